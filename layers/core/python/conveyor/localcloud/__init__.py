"""The local cloud: the CDK app's resources on a moto server on 127.0.0.1, with the Lambda
handlers running in-process. Not shipped to Lambda (the core layer excludes this package)."""
