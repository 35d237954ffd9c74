"""MLflow under DR: the real tracking server (``mlflow server``) with PostgreSQL as its
backend store and S3 as its artifact store, used through the MLflow client."""
