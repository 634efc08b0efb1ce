"""apigw reference gateway: the API gateway the apigw.ops collection operates."""

__version__ = "0.1.0"
