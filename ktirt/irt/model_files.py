"""The files of a trained WD-IRT model folder (models/wdirt): named once, for train_wdirt that writes them and
export that reads them."""

MODEL = "model.pt"
ITEM_PARAMS = "item_params.parquet"
ITEM_DRIFT = "item_drift.parquet"
EVENT_PREDICTIONS = "event_predictions.parquet"
"""per event of events.parquet, in its order: user_id, item_id, timestamp, theta, predicted"""
