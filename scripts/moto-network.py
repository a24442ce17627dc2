#!/usr/bin/env python3
"""Creates the network an example environment needs (a VPC with DNS hostnames, two subnets and
a security group) through the EC2 API of the AWS endpoint in AWS_ENDPOINT_URL, and prints
`--var` flags for converge. Used by the demo and the integration tests against moto."""
import os
import sys

import boto3

region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)
vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
subnets = [
    ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
    for cidr, az in (("10.42.1.0/24", "a"), ("10.42.2.0/24", "b"))
]
sg = ec2.create_security_group(GroupName="converge-demo", Description="converge demo", VpcId=vpc)["GroupId"]
flags = [
    f"--var=subnet_a={subnets[0]}",
    f"--var=subnet_b={subnets[1]}",
    f"--var=security_group={sg}",
    f"--var=vpc_id={vpc}",
]
sys.stdout.write(" ".join(flags) + "\n")
