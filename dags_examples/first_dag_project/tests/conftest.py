pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]
