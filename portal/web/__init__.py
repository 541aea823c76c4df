"""Web plumbing: error pages, forms, CSRF, sessions, security headers, language, URLs."""
