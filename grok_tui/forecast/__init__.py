"""Will it grok, and when: a forecast from a run's curves up to a step (issue 26).

`forecast(rows, settings, fit)` is the one entry point; `load_fit()` the shipped fit. The forecast point and
the label are defined in point.py, the signals in features.py, the models in model.py, the fit command in
fit.py, the honest score in score.py.
"""

from grok_tui.forecast.model import Fit, FitError, Forecast, forecast, load_fit
from grok_tui.forecast.point import FIT_ACC, LABEL_ACC, OPEN_ACC, forecast_index, label

__all__ = [
    "FIT_ACC",
    "LABEL_ACC",
    "OPEN_ACC",
    "Fit",
    "FitError",
    "Forecast",
    "forecast",
    "forecast_index",
    "label",
    "load_fit",
]
