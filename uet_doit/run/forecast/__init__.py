"""What a run will cost and take, before it runs (`--dry-run`, `uet cost --forecast`)."""
