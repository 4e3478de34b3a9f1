"""Training compute beyond the Train Lambda (conveyor.compute): an ECS Fargate task and a SageMaker
training job, both running the training image (layers/training/Dockerfile; its entry point,
functions/train/container.py, tells the three ways apart).

Network: a small VPC of its own, public subnets only and no NAT gateway (a NAT costs by the hour; the
task runs minutes a day): the task gets a public IP to pull its image and write its logs, no inbound
rule, and reaches S3 and DynamoDB through gateway endpoints (free, traffic stays in AWS). Its flow logs
go to CloudWatch Logs. The SageMaker job needs no VPC (no VpcConfig: SageMaker's own network).

Grants mirror the Train function's: read the data bucket, read and put in the artifact bucket, read the
registry table. The image is the one the Lambda functions run (one asset, built at deploy).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from conveyor.compute import CAPACITY, FARGATE, FARGATE_CPU
from infra import constants as c
from infra import nag

CONTAINER_NAME = "train"
SAGEMAKER_LOGS = "/aws/sagemaker/TrainingJobs"


class TrainingCompute(Construct):
    """The Fargate task (cluster, task definition, network) and the SageMaker job's role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecr_assets.DockerImageAsset,
        environment: Mapping[str, str],
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.image = image
        # Outside Lambda the SDK's region is not a given (SageMaker does not set one): name it.
        self.environment = {**environment, "AWS_DEFAULT_REGION": cdk.Aws.REGION}
        self.artifact_bucket = artifact_bucket
        self.vpc = self._network()
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="Conveyor training task: no inbound; outbound to ECR, CloudWatch Logs, S3, DynamoDB",
        )
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=FARGATE_CPU,
            memory_limit_mib=CAPACITY[FARGATE].memory_mb,
            ephemeral_storage_gib=c.TRAINING_TASK_STORAGE_GIB,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(self, "TaskLogs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY)
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_docker_image_asset(image),
            environment=self.environment,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=CONTAINER_NAME, log_group=log_group),
            essential=True,
        )
        self.sagemaker_role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Conveyor training job: the training image, the data, the artifacts, its own logs",
        )
        image.repository.grant_pull(self.sagemaker_role)
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{SAGEMAKER_LOGS}:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        for role in (self.task_definition.task_role, self.sagemaker_role):
            data_bucket.grant_read(role)
            artifact_bucket.grant_read(role)
            artifact_bucket.grant_put(role)
            table.grant_read_data(role)
            nag.bucket_grants(
                role, [(data_bucket, "*"), (artifact_bucket, "*")], "trains: reads data, writes artifacts."
            )
        nag.training_compute(self, artifact_bucket, c.SAGEMAKER_OUTPUT_PREFIX)

    def _network(self) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            restrict_default_security_group=False,
        )
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        vpc.add_gateway_endpoint("DynamoDB", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY)
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        return vpc

    @property
    def subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
