"""Small utilities shared by every layer: ids, JSON bodies, encryption at rest, log masking."""
