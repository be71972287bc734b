# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""K-Net datasets; :mod:`knet.datasets.synthetic` makes the built-in data."""
