"""Shipped scan rule packs (TOML): secrets, placeholders, emoji."""
