# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
