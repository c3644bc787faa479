"""A scoring API: a logistic regression fitted at start on a synthetic data set, with the
data set's summary kept as an Arrow table. Every library of the stack is used on the way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import FastAPI
from pydantic import BaseModel
from scipy import stats
from sklearn.linear_model import LogisticRegression

FEATURES = ("age", "income", "visits")


def training_frame(rows: int = 2000, seed: int = 7) -> pd.DataFrame:
    """A reproducible synthetic data set: the label depends on income and visits."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(40_000, 12_000, rows),
            "visits": rng.poisson(3, rows),
        }
    )
    score = (frame["income"] - 40_000) / 12_000 + (frame["visits"] - 3) / 2
    frame["label"] = (score + rng.normal(0, 0.5, rows) > 0).astype(int)
    return frame


FRAME = training_frame()
MODEL = LogisticRegression(max_iter=500).fit(FRAME[list(FEATURES)], FRAME["label"])
SUMMARY = pa.Table.from_pandas(FRAME.describe().reset_index())
app = FastAPI()


class Customer(BaseModel):
    age: int
    income: float
    visits: int


@app.get("/health")
def health() -> dict[str, object]:
    return {"status": "ok", "rows": FRAME.shape[0], "summary_columns": SUMMARY.num_columns}


@app.post("/predict")
def predict(customer: Customer) -> dict[str, float]:
    row = pd.DataFrame([customer.model_dump()])[list(FEATURES)]
    probability = float(MODEL.predict_proba(row)[0, 1])
    percentile = float(stats.percentileofscore(FRAME["income"], customer.income))
    return {"probability": probability, "income_percentile": percentile}
