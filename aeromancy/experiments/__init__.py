"""Experiments: the results table and the diff of two runs, both read from run records.

``results`` turns run records into one table (a row per task run, config flattened
into columns, each metric's final value); ``compare`` lists what differs between two
runs. Neither needs a tracker: run records are the single source.
"""
