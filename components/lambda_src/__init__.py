"""Source of the Lambda functions the components deploy (packaged as is; standard library only)."""
