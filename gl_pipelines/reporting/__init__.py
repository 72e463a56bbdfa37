"""Report logic as plain functions: units, emission factors, energy balance, GHG inventory,
CEMS reconciliation, intensity, and the monthly HTML/Parquet outputs. No Dagster here."""
