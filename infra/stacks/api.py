"""The web client's REST API: POST /uploads and GET /jobs/{job_id} on the api function, with stage
throttling and either API keys (usage plan) or JWTs from a Cognito user pool, per environment."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.common import log_group, removal_policy, suppress
from infra.config import EnvironmentConfig
from posereel.resources import ResourceNames


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        api_function: lambda_.IFunction,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        cfg = config.api
        access_logs = log_group(self, "AccessLogs", config)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{names.prefix}-api",
            description="PoseReel: announce uploads, read jobs",
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
                allow_origins=cfg.allowed_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Content-Type", "Authorization", "X-Api-Key"],
            ),
            endpoint_types=[apigw.EndpointType.REGIONAL],
        )
        integration = apigw.LambdaIntegration(api_function)
        method_options: dict = {}
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
            method_options = dict(authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO)
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
        else:
            method_options = dict(api_key_required=True)
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

        uploads = self.api.root.add_resource("uploads")
        uploads.add_method("POST", integration, **method_options)
        job = self.api.root.add_resource("jobs").add_resource("{job_id}")
        job.add_method("GET", integration, **method_options)
        CfnOutput(self, "ApiUrl", value=self.api.url)
        if cfg.auth == "api_key":  # after the methods exist: suppressions reach existing children only
            suppress(
                self.api,
                {
                    "AwsSolutions-APIG4": "Requests carry an API key checked by API Gateway (usage plan, "
                    "throttled); "
                    "this environment is configured for API keys, not JWTs.",
                    "AwsSolutions-COG4": "This environment authorizes with API keys; the Cognito authorizer "
                    "is used where auth is jwt.",
                },
            )

        suppress(
            self.api,
            {
                "AwsSolutions-APIG2": "Bodies are validated by the api function (pydantic, 422 with field "
                "errors), "
                "so errors keep one shape.",
                "AwsSolutions-APIG3": "No WAF web ACL yet: stage throttling and the usage plan bound the "
                "load; a WAF is "
                "an account-level choice (cost ~5 USD/month + per request).",
                "AwsSolutions-IAM4": "API Gateway's account-level CloudWatch role uses AWS's "
                "AmazonAPIGatewayPushToCloudWatchLogs policy, the documented way to enable execution logs.",
            },
        )
        # CORS preflight (OPTIONS) is unauthenticated by design: browsers send no credentials on it.
        for resource in (uploads, job):
            options = resource.node.try_find_child("OPTIONS")
            if options is not None:
                suppress(
                    options,
                    {
                        "AwsSolutions-APIG4": "CORS preflight (OPTIONS) is a mock integration browsers call "
                        "without credentials.",
                        "AwsSolutions-COG4": "CORS preflight (OPTIONS) is a mock integration browsers call "
                        "without credentials.",
                    },
                )
