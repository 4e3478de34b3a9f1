"""Physical names for the template's resources on the local cloud, and a resolver for the
intrinsic functions the CDK emits (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConveyorError

ACCOUNT = "123456789012"


class ResolveError(ConveyorError):
    pass


def _bucket_name(stack: str, logical_id: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "", f"{stack}-{logical_id}".lower())
    return name[:63].rstrip("-")


# Resources the local cloud does not create but the state machine names (the training task's cluster and
# security group): the attribute the definition reads, and its local value.
_NAMED_ONLY = {
    "AWS::EC2::SecurityGroup": ("GroupId", "{short}"),
    "AWS::ECS::Cluster": ("Arn", "arn:aws:ecs:{r}:{a}:cluster/{short}"),
}


@dataclass
class Names:
    """What each logical id is called locally: Ref value and attributes."""

    region: str
    endpoint: str
    stack: str
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def for_template(cls, template: dict[str, Any], *, region: str, endpoint: str, stack: str) -> Names:
        names = cls(region=region, endpoint=endpoint, stack=stack)
        r, a = region, ACCOUNT
        for logical_id, resource in template.get("Resources", {}).items():
            kind = resource["Type"]
            short = logical_id[:64]
            if kind == "AWS::S3::Bucket":
                name = _bucket_name(stack, logical_id)
                names.refs[logical_id] = name
                names.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
                names.attrs[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"
                names.attrs[(logical_id, "RegionalDomainName")] = f"{name}.s3.{r}.amazonaws.com"
            elif kind == "AWS::DynamoDB::Table":
                names.refs[logical_id] = short
                names.attrs[(logical_id, "Arn")] = f"arn:aws:dynamodb:{r}:{a}:table/{short}"
            elif kind == "AWS::SQS::Queue":
                names.refs[logical_id] = f"{endpoint}/{a}/{short[:80]}"
                names.attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{r}:{a}:{short[:80]}"
                names.attrs[(logical_id, "QueueName")] = short[:80]
                names.attrs[(logical_id, "QueueUrl")] = f"{endpoint}/{a}/{short[:80]}"
            elif kind == "AWS::SNS::Topic":
                names.refs[logical_id] = f"arn:aws:sns:{r}:{a}:{short}"
                names.attrs[(logical_id, "TopicArn")] = f"arn:aws:sns:{r}:{a}:{short}"
                names.attrs[(logical_id, "TopicName")] = short
            elif kind == "AWS::Lambda::Function":
                names.refs[logical_id] = short
                names.attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{r}:{a}:function:{short}"
            elif kind == "AWS::StepFunctions::StateMachine":
                arn = f"arn:aws:states:{r}:{a}:stateMachine:{short[:80]}"
                names.refs[logical_id] = arn
                names.attrs[(logical_id, "Arn")] = arn
                names.attrs[(logical_id, "Name")] = short[:80]
            elif kind == "AWS::IAM::Role":
                names.refs[logical_id] = short
                names.attrs[(logical_id, "Arn")] = f"arn:aws:iam::{a}:role/{short}"
            elif kind == "AWS::Logs::LogGroup":
                names.refs[logical_id] = f"/conveyor/{short}"
                names.attrs[(logical_id, "Arn")] = f"arn:aws:logs:{r}:{a}:log-group:/conveyor/{short}:*"
            elif kind == "AWS::Events::Rule":
                names.refs[logical_id] = short
                names.attrs[(logical_id, "Arn")] = f"arn:aws:events:{r}:{a}:rule/{short}"
            else:
                names.refs[logical_id] = short
                attribute, pattern = _NAMED_ONLY.get(kind, ("Arn", "arn:aws:cloudformation:{r}:{a}:local/{short}"))
                names.attrs[(logical_id, attribute)] = pattern.format(r=r, a=a, short=short)
        return names

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::NoValue": "",
        }.get(name)

    def ref(self, name: str) -> str:
        value = self.pseudo(name)
        if value is None:
            value = self.refs.get(name)
        if value is None:
            raise ResolveError(f"Ref to unknown resource or parameter {name!r}")
        return value

    def get_att(self, logical_id: str, attribute: str) -> str:
        value = self.attrs.get((logical_id, attribute))
        if value is None:
            raise ResolveError(f"Fn::GetAtt {logical_id}.{attribute} has no local value")
        return value

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((op, arg),) = value.items()
            if op == "Ref":
                return self.ref(arg)
            if op == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if op == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if op == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if op == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if op == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def substitute(match: re.Match[str]) -> str:
                    token = match.group(1)
                    if token in variables:
                        return str(variables[token])
                    if "." in token:
                        return self.get_att(*token.split(".", 1))
                    return self.ref(token)

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {k: self.resolve(v) for k, v in value.items()}
