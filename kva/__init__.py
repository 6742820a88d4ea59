"""kva core: what every service shares.

Settings, the Kafka wrapper, the frame envelope, logging and metrics set-up, the CLI.
"""

__version__ = "0.1.0"
