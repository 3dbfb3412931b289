"""The audit: fairness criteria checked against rule text, stream aggregates and projections."""
