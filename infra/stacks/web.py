"""Hosting of the web client: a private site bucket behind a CloudFront distribution (Origin Access
Control, HTTPS only, security headers, access logs). The first stack of an environment: the upload
bucket's and the API's CORS rules name the distribution's domain, so it must exist before them.
The content (web/ and config.json) is published by the API stack, which knows the API's URL."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.common import removal_policy, suppress
from infra.config import EnvironmentConfig
from posereel.resources import ResourceNames


def content_security_policy(names: ResourceNames, config: EnvironmentConfig) -> str:
    """The page talks to the API (execute-api in this region) and to S3 through presigned URLs
    (uploads, result files); it loads its own scripts and styles only."""
    buckets = [names.bucket(role, account=config.account) for role in ("uploads", "results")]
    s3_hosts = " ".join(
        f"https://{bucket}.s3.amazonaws.com https://{bucket}.s3.{config.region}.amazonaws.com"
        for bucket in buckets
    )
    api_hosts = f"https://*.execute-api.{config.region}.amazonaws.com"
    return "; ".join(
        [
            "default-src 'self'",
            f"connect-src 'self' {api_hosts} {s3_hosts}",
            f"img-src 'self' data: blob: {s3_hosts}",
            f"media-src 'self' blob: {s3_hosts}",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class WebStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)
        destroy = config.removal_policy == "destroy"
        # CloudFront's standard logs are delivered with an ACL: this bucket keeps ACLs enabled
        # (BUCKET_OWNER_PREFERRED), unlike every other bucket of the project.
        self.logs = s3.Bucket(
            self,
            "Logs",
            bucket_name=f"{names.prefix}-web-logs-{self.account}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.results_expiry_days))
            ],
            removal_policy=removal,
            auto_delete_objects=destroy,
        )
        suppress(
            self.logs,
            {"AwsSolutions-S1": "This is the web access-log bucket; logging it into itself would loop."},
        )
        self.site = s3.Bucket(
            self,
            "Site",
            bucket_name=f"{names.prefix}-web-{self.account}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="site/",
            removal_policy=removal,
            auto_delete_objects=destroy,
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            response_headers_policy_name=f"{names.prefix}-web-security",
            comment="PoseReel web client: HSTS, CSP, no framing, no sniffing, no referrer to other origins",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(names, config), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{names.prefix} web client",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        # The page's origin, as browsers send it in CORS requests.
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        suppress(
            self.distribution,
            {
                "AwsSolutions-CFR1": "No geo restriction: the client is meant to be reachable wherever its "
                "users are; the API behind it authenticates every call.",
                "AwsSolutions-CFR2": "No WAF web ACL: the site is static files; a WAF is an account-level "
                "choice (cost ~5 USD/month + per request), as for the API.",
                "AwsSolutions-CFR4": "The distribution uses CloudFront's default *.cloudfront.net "
                "certificate (no custom domain configured), which does not allow choosing the minimum TLS "
                "version.",
            },
        )
