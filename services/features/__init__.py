"""The fraud-scoring feature definitions shared by streaming, backfill, training and serving."""
