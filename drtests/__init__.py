"""drtests: disaster-recovery verification and game days for a Spark-on-Kubernetes platform."""

__version__ = "0.1.0"
