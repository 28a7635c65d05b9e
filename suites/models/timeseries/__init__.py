"""Models of the time series suite (bench.suites.timeseries): multivariate sensor windows in, an
anomaly score (reconstruction or prediction error) or a forecast out. Plain PyTorch, seeded random
weights; each module's docstring names its paper and reference implementation, and where this code
departs from them. Inputs are ``(batch, window, channels)`` float32 windows normalised per channel.
"""
