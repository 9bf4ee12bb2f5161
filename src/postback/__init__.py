"""postback: self-hosted webhook delivery."""

__version__ = "0.1.0"
