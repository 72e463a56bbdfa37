"""What the demo plant is known to serve: computed from the model, never stored."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from gl_demo_plant import plant_model


def expected_readings(tag_names: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    models = {model.name: model for model in plant_model.catalogue(n_synthetic=1000).values()}
    times = plant_model.sample_times(start, end)
    parts = []
    for name in tag_names:
        model = models[name]
        parts.append(
            pd.DataFrame(
                {
                    "ts": pd.to_datetime(times, unit="s", utc=True),
                    "tag": name,
                    "value": model.values(times),
                    "status_code": model.status_codes(times).astype("int64"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values(["tag", "ts"], ignore_index=True)
