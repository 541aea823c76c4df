"""RQ entry points: thin functions that take ids, call one service and commit.

Jobs never render templates and never hold state of their own: the database row is the truth,
Redis only carries the id.
"""
