"""The public REST API (one Lambda proxy function behind every route), with stage throttling and
either API keys (usage plan) or JWTs from a Cognito user pool, per environment; API Gateway's own
errors in the API's error shape; and the web client published to the site of the web stack with a
config.json naming this API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.common import REPO, log_group, removal_policy, suppress
from infra.config import EnvironmentConfig
from infra.stacks.web import WebStack
from posereel.resources import GATEWAY_ERRORS, ResourceNames

WEB_DIR = REPO / "web"


@dataclass(frozen=True)
class Route:
    path: str  # API Gateway's resource path; the handler spells {job_id} as <job_id>
    method: str
    public: bool = False  # no API key / authorizer


# What the api function serves (functions/posereel_functions/api.py), and nothing else: an unknown
# path or method is answered by API Gateway (404 NOT_FOUND below) without invoking the function.
ROUTES: tuple[Route, ...] = (
    Route("/health", "GET", public=True),
    Route("/uploads", "POST"),
    Route("/uploads/{job_id}/parts", "GET"),
    Route("/uploads/{job_id}/complete", "POST"),
    Route("/jobs", "GET"),
    Route("/jobs/{job_id}", "GET"),
    Route("/jobs/{job_id}", "DELETE"),
    Route("/jobs/{job_id}/results", "GET"),
    Route("/jobs/{job_id}/reels", "POST"),
    Route("/jobs/{job_id}/reels", "GET"),
    Route("/jobs/{job_id}/reels/{reel_id}", "GET"),
    Route("/jobs/{job_id}/reels/{reel_id}", "DELETE"),
)
CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "Authorization", "X-Api-Key"]

# A gateway response's headers are static: they cannot pick one of several allowed origins the
# way the preflight does. These bodies are fixed messages carrying no data, and the API takes its
# credentials from headers, never cookies, so a wildcard origin exposes nothing.
GATEWAY_ERROR_HEADERS = {
    "Access-Control-Allow-Origin": "'*'",
    "Access-Control-Allow-Headers": "'" + ",".join(CORS_HEADERS) + "'",
    "Access-Control-Allow-Methods": "'" + ",".join(CORS_METHODS) + "'",
}


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        api_function: lambda_.IFunction,
        allowed_origins: list[str],
        web: WebStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        cfg = config.api
        access_logs = log_group(self, "AccessLogs", config)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{names.prefix}-api",
            description="PoseReel: uploads and jobs",
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=names.env,
                throttling_rate_limit=cfg.throttle_rate_per_s,
                throttling_burst_limit=cfg.throttle_burst,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=allowed_origins, allow_methods=CORS_METHODS, allow_headers=CORS_HEADERS
            ),
            endpoint_types=[apigw.EndpointType.REGIONAL],
        )
        # The stage URL without the trailing slash: clients append "/jobs".
        self.url = (
            f"https://{self.api.rest_api_id}.execute-api.{self.region}.{self.url_suffix}/"
            f"{self.api.deployment_stage.stage_name}"
        )
        for response_type, (status, code) in GATEWAY_ERRORS.items():
            self.api.add_gateway_response(
                f"Gateway{response_type.title().replace('_', '')}",
                type=getattr(apigw.ResponseType, response_type.replace("4XX", "4_XX").replace("5XX", "5_XX")),
                status_code=status,
                response_headers=GATEWAY_ERROR_HEADERS,
                templates={
                    "application/json": f'{{"code": "{code}", "message": $context.error.messageString}}'
                },
            )

        authenticated = self._auth(names, config)
        integration = apigw.LambdaIntegration(api_function)
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route in ROUTES:
            resource = self.api.root.resource_for_path(route.path)
            options = (
                dict(authorization_type=apigw.AuthorizationType.NONE, api_key_required=False)
                if route.public
                else authenticated
            )
            self.methods[route.path, route.method] = resource.add_method(route.method, integration, **options)
        CfnOutput(self, "ApiUrl", value=self.url)
        self._publish_web_client(web, auth=cfg.auth)
        self._suppress(cfg.auth)

    def _auth(self, names: ResourceNames, config: EnvironmentConfig) -> dict[str, Any]:
        """The environment's authentication: the method options of every non-public route."""
        cfg = config.api
        if cfg.auth == "jwt":
            self.user_pool = cognito.UserPool(
                self,
                "Users",
                user_pool_name=f"{names.prefix}-users",
                self_sign_up_enabled=False,
                sign_in_aliases=cognito.SignInAliases(email=True),
                password_policy=cognito.PasswordPolicy(
                    min_length=12,
                    require_digits=True,
                    require_lowercase=True,
                    require_symbols=True,
                    require_uppercase=True,
                ),
                mfa=cognito.Mfa.OPTIONAL,
                mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),  # no SMS role needed
                advanced_security_mode=None,
                removal_policy=removal_policy(config),
            )
            self.user_pool_client = self.user_pool.add_client("WebClient", generate_secret=False)
            authorizer = apigw.CognitoUserPoolsAuthorizer(
                self, "Authorizer", cognito_user_pools=[self.user_pool]
            )
            CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
            CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
            suppress(
                self.user_pool,
                {
                    "AwsSolutions-COG2": "MFA is optional for viewers; accounts are created by an "
                    "administrator.",
                    "AwsSolutions-COG3": "Cognito advanced security (threat protection) is a paid add-on, "
                    "left to the account owner.",
                    "AwsSolutions-COG8": "The Plus feature plan (threat protection) is a paid tier, left to "
                    "the account owner.",
                },
            )
            return dict(authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO)
        plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{names.prefix}-usage",
            throttle=apigw.ThrottleSettings(
                rate_limit=cfg.throttle_rate_per_s, burst_limit=cfg.throttle_burst
            ),
            quota=(
                apigw.QuotaSettings(limit=cfg.quota_per_day, period=apigw.Period.DAY)
                if cfg.quota_per_day
                else None
            ),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        key = self.api.add_api_key("WebClientKey", api_key_name=f"{names.prefix}-web")
        plan.add_api_key(key)
        CfnOutput(self, "ApiKeyId", value=key.key_id)
        return dict(api_key_required=True)

    def _publish_web_client(self, web: WebStack, *, auth: str) -> None:
        """web/ and a config.json naming this API, into the site bucket (here, not in the web stack:
        the web stack comes first, because the buckets' and the API's CORS rules name its domain)."""
        client_config: dict[str, Any] = {"api_url": self.url, "auth": auth}
        if auth == "jwt":  # what a sign-in needs; not secrets
            client_config["cognito"] = {
                "region": self.region,
                "user_pool_id": self.user_pool.user_pool_id,
                "client_id": self.user_pool_client.user_pool_client_id,
            }
        if not (WEB_DIR / "index.html").is_file():
            # The web client is optional for the API: without it there is nothing to publish.
            Annotations.of(self).add_warning_v2(
                "posereel:no-web-client", f"{WEB_DIR} has no index.html: the web client is not published"
            )
            return
        self.web_content = s3deploy.BucketDeployment(
            self,
            "WebClient",
            destination_bucket=web.site,
            sources=[
                # config.json is generated here; a local one (for `posereel up`) must not overwrite it.
                s3deploy.Source.asset(str(WEB_DIR), exclude=["config.json", "**/.*", "**/node_modules"]),
                s3deploy.Source.json_data("config.json", client_config),
            ],
            distribution=web.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )

    def _suppress(self, auth: str) -> None:
        if auth == "api_key":
            suppress(
                self.api,
                {
                    "AwsSolutions-APIG4": "Requests carry an API key checked by API Gateway (usage plan, "
                    "throttled); this environment is configured for API keys, not JWTs.",
                    "AwsSolutions-COG4": "This environment authorizes with API keys; the Cognito authorizer "
                    "is used where auth is jwt.",
                },
            )
        suppress(
            self.api,
            {
                "AwsSolutions-APIG2": "Bodies are validated by the api function (pydantic, 422 with field "
                "errors), so errors keep one shape.",
                "AwsSolutions-APIG3": "No WAF web ACL yet: stage throttling and the usage plan bound the "
                "load; a WAF is an account-level choice (cost ~5 USD/month + per request).",
                "AwsSolutions-IAM4": "API Gateway's account-level CloudWatch role uses AWS's "
                "AmazonAPIGatewayPushToCloudWatchLogs policy, the documented way to enable execution logs.",
            },
        )
        unauthenticated = {
            "AwsSolutions-APIG4": "{what} is public by design.",
            "AwsSolutions-COG4": "{what} is public by design.",
        }
        health = self.methods["/health", "GET"]
        suppress(
            health,
            {
                rule: reason.format(what="GET /health (a liveness check, no data)")
                for rule, reason in unauthenticated.items()
            },
        )
        # CORS preflight (OPTIONS) carries no credentials: browsers send it before the real request.
        for resource in {method.resource for method in self.methods.values()}:
            options = resource.node.try_find_child("OPTIONS")
            if options is not None:
                suppress(
                    options,
                    {
                        rule: reason.format(what="CORS preflight (OPTIONS, a mock integration)")
                        for rule, reason in unauthenticated.items()
                    },
                )
        if hasattr(self, "web_content"):
            # aws-cdk-lib's BucketDeployment handler: one singleton function per stack.
            handler = next(
                child
                for child in self.node.children
                if child.node.id.startswith("Custom::CDKBucketDeployment")
            )
            suppress(
                handler,
                {
                    "AwsSolutions-IAM4": "aws-cdk-lib's BucketDeployment handler uses "
                    "AWSLambdaBasicExecutionRole.",
                    "AwsSolutions-IAM5": "aws-cdk-lib's BucketDeployment handler reads its source assets and "
                    "writes the site bucket (object wildcards of those two buckets) and invalidates the "
                    "distribution.",
                    "AwsSolutions-L1": "aws-cdk-lib's BucketDeployment handler: its runtime is chosen by "
                    "aws-cdk-lib.",
                },
            )
