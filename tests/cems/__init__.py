"""Tests of the Part 75 CEMS domain functions (gl_pipelines.cems)."""
