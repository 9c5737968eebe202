"""The jobs shipped with exoflow (installed as the package ``exoflow.jobs``)."""
