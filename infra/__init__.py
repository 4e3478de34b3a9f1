"""The Conveyor CDK app: one stack, one construct per capability."""
