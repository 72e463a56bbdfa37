"""CEMS under 40 CFR Part 75: raw-hour contract, Appendix F equations, missing-data substitution, EPA files."""
