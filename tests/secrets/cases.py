"""Made-up credentials in realistic formats, one positive and one decoy per built-in rule.

Every value is generated here from a fixed seed (so the repository holds no string that looks like a live
credential, and garrison's own tree does not trip secret scanners): right prefix, alphabet and length,
never a valid credential. Decoys are near misses a careless rule would report: the documentation's example
value, a placeholder, a template reference, a wrong length or alphabet, a missing context word.
"""

from __future__ import annotations

import base64
import json
import random

_R = random.Random(20261202)

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
HEX = "0123456789abcdef"
ALNUM = UPPER + LOWER + DIGITS
B32 = UPPER + "234567"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def tok(chars: str, n: int) -> str:
    """``n`` random characters of ``chars`` (seeded: the same on every run)."""
    return "".join(_R.choice(chars) for _ in range(n))


def uuid() -> str:
    return f"{tok(HEX, 8)}-{tok(HEX, 4)}-4{tok(HEX, 3)}-a{tok(HEX, 3)}-{tok(HEX, 12)}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "svc-billing", "iss": "https://auth.internal.test", "iat": 1767225600, "role": "admin"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{tok(URLSAFE, 43)}"


def pem_body(lines: int = 12) -> str:
    return "\n".join(tok(B64, 64) for _ in range(lines)) + "\n" + tok(B64, 20) + "=="


def private_key(kind: str = "RSA ") -> str:
    return f"-----BEGIN {kind}PRIVATE KEY-----\nMIIE{pem_body()}\n-----END {kind}PRIVATE KEY-----\n"


AWS_KEY_ID = "AKIA" + tok(B32, 16)
AWS_SECRET = tok(ALNUM + "+/", 40)

#: rule id → (positive text, decoy text). The positive must be reported by the rule; the decoy must not.
CASES: dict[str, tuple[str, str]] = {
    "aws-access-key-id": (
        f"[default]\naws_access_key_id = {AWS_KEY_ID}\n",
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    ),
    "aws-secret-access-key": (
        f"aws_secret_access_key = {AWS_SECRET}\n",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ),
    "aws-mws-key": (f"MWS_AUTH_TOKEN=amzn.mws.{uuid()}\n", "MWS_AUTH_TOKEN=amzn.mws.<your-token>\n"),
    "gcp-service-account": (
        json.dumps({"type": "service_account", "project_id": "billing-prod-4711"}, indent=2),
        json.dumps({"type": "authorized_user", "account": "service_account"}, indent=2),
    ),
    "gcp-api-key": (f'const mapsKey = "AIza{tok(URLSAFE, 35)}";\n', 'const mapsKey = "AIzaYOUR_API_KEY";\n'),
    "gcp-oauth-client-secret": (
        f'{{"client_secret": "GOCSPX-{tok(URLSAFE, 28)}"}}\n',
        '{"client_secret": "GOCSPX-xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}\n',
    ),
    "azure-storage-account-key": (
        "DefaultEndpointsProtocol=https;AccountName=billingstore;"
        f"AccountKey={tok(ALNUM + '+/', 86)}==;EndpointSuffix=core.windows.net\n",
        "DefaultEndpointsProtocol=https;AccountName=billingstore;AccountKey=${STORAGE_KEY}\n",
    ),
    "azure-client-secret": (
        f'AZURE_CLIENT_SECRET="{tok(ALNUM, 3)}8Q~{tok(ALNUM + "_~.-", 34)}"\n',
        'AZURE_CLIENT_SECRET="<client-secret>"\n',
    ),
    "azure-sas-token": (
        "https://billingstore.blob.core.windows.net/exports?sv=2022-11-02&ss=b&srt=co&sp=rl"
        f"&se=2027-01-01T00:00:00Z&sig={tok(ALNUM, 43)}%3D\n",
        "https://billingstore.blob.core.windows.net/exports?sv=2022-11-02&sig={{ sas_signature }}\n",
    ),
    "azure-devops-pat": (
        f"AZURE_DEVOPS_PAT={tok(LOWER + '234567', 52)}\n",
        "AZURE_DEVOPS_PAT=$(cat /run/secrets/ado_pat)\n",
    ),
    "azure-app-config-connection-string": (
        f"Endpoint=https://billing-config.azconfig.io;Id={tok(ALNUM, 4)}-l0-s0:{tok(ALNUM, 20)};"
        f"Secret={tok(B64, 44)}\n",
        "Endpoint=https://billing-config.azconfig.io;Id=<id>;Secret=<secret>\n",
    ),
    "azure-data-factory-registration-key": (
        f"AUTH_KEY=IR@{uuid()}@adf-billing-001@we@{tok(B64, 43)}=\n",
        "AUTH_KEY=IR@<runtime-id>@adf-billing-001@we@<key>\n",
    ),
    "azure-container-registry-password": (
        f"ACR_PASSWORD={tok(ALNUM + '+/', 52)}\n",
        "ACR_PASSWORD=$(az acr credential show -n billing --query passwords[0].value -o tsv)\n",
    ),
    "azure-ai-services-key": (
        f"AZURE_OPENAI_API_KEY={tok(HEX, 32)}\n",
        "AZURE_OPENAI_API_KEY=<your-azure-openai-key>\n",
    ),
    "digitalocean-token": (
        f"DIGITALOCEAN_TOKEN=dop_v1_{tok(HEX, 64)}\n",
        f"DIGITALOCEAN_TOKEN=dop_v1_{tok(HEX, 20)}\n",
    ),
    "alibaba-access-key-id": (f"ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI{tok(ALNUM, 20)}\n", "access_key_id: LTAIxxxxxxxx\n"),
    "alibaba-secret-key": (
        f"alibaba_cloud_access_key_secret = {tok(ALNUM, 30)}\n",
        "alibaba_cloud_access_key_secret = ${ALIBABA_CLOUD_ACCESS_KEY_SECRET}\n",
    ),
    "ibm-cloud-api-key": (f'IBMCLOUD_API_KEY="{tok(URLSAFE, 44)}"\n', 'IBMCLOUD_API_KEY="your-ibm-cloud-api-key"\n'),
    "heroku-api-key": (f"HEROKU_API_KEY={uuid()}\n", "HEROKU_API_KEY=00000000-0000-0000-0000-000000000000\n"),
    "hashicorp-vault-token": (f"VAULT_TOKEN=hvs.{tok(URLSAFE, 92)}\n", "VAULT_TOKEN=hvs.example\n"),
    "hashicorp-tf-api-token": (
        f'credentials "app.terraform.io" {{ token = "{tok(ALNUM, 14)}.atlasv1.{tok(URLSAFE, 67)}" }}\n',
        'credentials "app.terraform.io" { token = "xxxxxxxxxxxxxx.atlasv1.<token>" }\n',
    ),
    "pulumi-api-token": (f"PULUMI_ACCESS_TOKEN=pul-{tok(HEX, 40)}\n", "PULUMI_ACCESS_TOKEN=pul-REPLACE_ME\n"),
    "databricks-api-token": (
        f"DATABRICKS_TOKEN=dapi{tok(HEX, 32)}\n",
        "DATABRICKS_TOKEN=dapi<personal-access-token>\n",
    ),
    "doppler-api-token": (f'DOPPLER_TOKEN="dp.pt.{tok(ALNUM, 43)}"\n', 'DOPPLER_TOKEN="dp.pt.${DOPPLER}"\n'),
    "dynatrace-api-token": (
        f"DT_API_TOKEN=dt0c01.{tok(UPPER + DIGITS, 24)}.{tok(UPPER + DIGITS, 64)}\n",
        "DT_API_TOKEN=dt0c01.ABC.DEF\n",
    ),
    "planetscale-token": (f"PLANETSCALE_PASSWORD=pscale_pw_{tok(URLSAFE, 43)}\n", "PLANETSCALE_PASSWORD=pscale_pw_\n"),
    "github-pat": (f"GITHUB_TOKEN=ghp_{tok(ALNUM, 36)}\n", "GITHUB_TOKEN=ghp_your_token_here\n"),
    "github-oauth": (f'"oauth_token": "gho_{tok(ALNUM, 36)}"\n', f'"oauth_token": "gho_{tok(ALNUM, 20)}"\n'),
    "github-app-token": (f"token: ghs_{tok(ALNUM, 36)}\n", "token: ghs_${{ secrets.APP_TOKEN }}\n"),
    "github-refresh-token": (f"refresh_token=ghr_{tok(ALNUM, 76)}\n", f"refresh_token=ghr_{tok(ALNUM, 30)}\n"),
    "github-fine-grained-pat": (
        f"GH_TOKEN=github_pat_{tok(ALNUM, 22)}_{tok(ALNUM, 59)}\n",
        "GH_TOKEN=github_pat_11AAAAAAA_xxxxxxxx\n",
    ),
    "gitlab-pat": (f"GITLAB_TOKEN=glpat-{tok(URLSAFE, 20)}\n", "GITLAB_TOKEN=glpat-xxxxxxxx\n"),
    "gitlab-runner-token": (f'token = "glrt-{tok(URLSAFE, 20)}"\n', 'token = "glrt-REDACTED"\n'),
    "gitlab-runner-registration-token": (
        f"--registration-token GR1348941{tok(URLSAFE, 20)}\n",
        "--registration-token GR1348941$REGISTRATION_TOKEN\n",
    ),
    "gitlab-deploy-token": (f"password: gldt-{tok(URLSAFE, 20)}\n", "password: gldt-<deploy-token>\n"),
    "gitlab-pipeline-trigger-token": (f"-F token=glptt-{tok(HEX, 40)}\n", "-F token=glptt-$TRIGGER_TOKEN\n"),
    "bitbucket-client-id": (f'BITBUCKET_CLIENT_ID="{tok(ALNUM, 32)}"\n', 'BITBUCKET_CLIENT_ID="${BB_CLIENT_ID}"\n'),
    "bitbucket-client-secret": (
        f'bitbucket_client_secret: "{tok(URLSAFE, 64)}"\n',
        'bitbucket_client_secret: "{{ bitbucket.secret }}"\n',
    ),
    "bitbucket-app-password": (f"BITBUCKET_APP_PASSWORD=ATBB{tok(ALNUM, 32)}\n", "BITBUCKET_APP_PASSWORD=ATBBxx\n"),
    "atlassian-api-token": (f"JIRA_API_TOKEN=ATATT3xFfGF0{tok(URLSAFE, 180)}\n", "JIRA_API_TOKEN=ATATT3<token>\n"),
    "npm-access-token": (f"NPM_TOKEN=npm_{tok(ALNUM, 36)}\n", "NPM_TOKEN=npm_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
    "npmrc-auth-token": (
        f"//registry.npmjs.org/:_authToken={tok(URLSAFE, 36)}\n",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
    ),
    "pypi-upload-token": (
        f"password = pypi-AgEIcHlwaS5vcmc{tok(URLSAFE, 140)}\n",
        "password = pypi-AgEIcHlwaS5vcmc\n",
    ),
    "rubygems-api-token": (f"GEM_HOST_API_KEY=rubygems_{tok(HEX, 48)}\n", "GEM_HOST_API_KEY=rubygems_<key>\n"),
    "nuget-api-key": (
        f"NUGET_API_KEY=oy2{tok(LOWER + DIGITS, 43)}\n",
        "NUGET_API_KEY=oy2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
    ),
    "dockerhub-pat": (f"DOCKERHUB_TOKEN=dckr_pat_{tok(URLSAFE, 27)}\n", "DOCKERHUB_TOKEN=dckr_pat_***\n"),
    "dockerconfig-secret": (
        json.dumps(
            {
                "auths": {
                    "registry.internal.test": {"auth": base64.b64encode(b"deploy:" + tok(ALNUM, 24).encode()).decode()}
                }
            }
        ),
        json.dumps({"auths": {"registry.internal.test": {"auth": ""}}, "credsStore": "desktop"}),
    ),
    "kubernetes-dockerconfig-secret": (
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: "
        + base64.b64encode(json.dumps({"auths": {"r.test": {"auth": tok(B64, 32)}}}).encode()).decode()
        + "\n",
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n"
        "  .dockerconfigjson: {{ .Values.pull }}\n",
    ),
    "clojars-api-token": (f"CLOJARS_PASSWORD=CLOJARS_{tok(LOWER + DIGITS, 60)}\n", "CLOJARS_USERNAME=deploy\n"),
    "private-packagist-token": (
        f"COMPOSER_AUTH_TOKEN=packagist_ort_{tok(HEX, 68)}\n",
        "COMPOSER_AUTH_TOKEN=packagist_ort_xxxx\n",
    ),
    "maven-settings-password": (
        f"<servers>\n  <server>\n    <id>internal</id>\n    <username>deploy</username>\n"
        f"    <password>{tok(ALNUM, 14)}</password>\n  </server>\n</servers>\n",
        "<servers>\n  <server>\n    <password>{COQLCE6DU6GtcS5P=}</password>\n"
        "    <password>${env.MAVEN_PASSWORD}</password>\n  </server>\n</servers>\n",
    ),
    "slack-access-token": (
        f"SLACK_BOT_TOKEN=xoxb-{tok(DIGITS, 12)}-{tok(DIGITS, 13)}-{tok(ALNUM, 24)}\n",
        "SLACK_BOT_TOKEN=xoxb-your-bot-token\n",
    ),
    "slack-app-token": (
        f"SLACK_APP_TOKEN=xapp-1-A{tok(UPPER + DIGITS, 10)}-{tok(DIGITS, 13)}-{tok(HEX, 64)}\n",
        "SLACK_APP_TOKEN=xapp-1-<app-token>\n",
    ),
    "slack-web-hook": (
        "SLACK_WEBHOOK=https://hooks.slack.com/services/"
        f"T{tok(UPPER + DIGITS, 10)}/B{tok(UPPER + DIGITS, 10)}/{tok(ALNUM, 24)}\n",
        "SLACK_WEBHOOK=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
    ),
    "discord-webhook": (
        f"url: https://discord.com/api/webhooks/{tok(DIGITS, 19)}/{tok(URLSAFE, 68)}\n",
        "url: https://discord.com/api/webhooks/{webhook_id}/{webhook_token}\n",
    ),
    "discord-bot-token": (
        f'DISCORD_BOT_TOKEN="M{tok(ALNUM, 25)}.{tok(URLSAFE, 6)}.{tok(URLSAFE, 38)}"\n',
        'DISCORD_BOT_TOKEN="your-discord-bot-token"\n',
    ),
    "discord-client-secret": (
        f'discord_client_secret = "{tok(URLSAFE, 32)}"\n',
        'discord_client_secret = "********************************"\n',
    ),
    "teams-webhook": (
        f"TEAMS_WEBHOOK_URL=https://contoso.webhook.office.com/webhookb2/{uuid()}@{uuid()}"
        f"/IncomingWebhook/{tok(HEX, 32)}/{uuid()}\n",
        "TEAMS_WEBHOOK_URL=https://contoso.webhook.office.com/webhookb2/<id>\n",
    ),
    "telegram-bot-token": (
        f"TELEGRAM_BOT_TOKEN={tok(DIGITS, 10)}:AA{tok(URLSAFE, 33)}\n",
        "TELEGRAM_BOT_TOKEN=123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11\n",
    ),
    "stripe-secret-token": (
        f"STRIPE_SECRET_KEY=sk_live_{tok(ALNUM, 24)}\n",
        "STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    "stripe-publishable-token": (f"publishableKey: 'pk_live_{tok(ALNUM, 24)}'\n", "publishableKey: 'pk_live_...'\n"),
    "stripe-webhook-secret": (f"STRIPE_WEBHOOK_SECRET=whsec_{tok(ALNUM, 32)}\n", "STRIPE_WEBHOOK_SECRET=whsec_...\n"),
    "square-access-token": (f"SQUARE_ACCESS_TOKEN=EAAA{tok(URLSAFE, 60)}\n", "SQUARE_ACCESS_TOKEN=EAAAxxxx\n"),
    "square-oauth-secret": (f"SQUARE_APP_SECRET=sq0csp-{tok(URLSAFE, 43)}\n", "SQUARE_APP_SECRET=sq0csp-<secret>\n"),
    "braintree-access-token": (
        f"BRAINTREE_ACCESS_TOKEN=access_token$production${tok(LOWER + DIGITS, 16)}${tok(HEX, 32)}\n",
        "BRAINTREE_ACCESS_TOKEN=access_token$sandbox$<merchant>$<token>\n",
    ),
    "flutterwave-key": (f"FLW_SECRET_KEY=FLWSECK-{tok(HEX, 32)}-X\n", "FLW_SECRET_KEY=FLWSECK-<key>-X\n"),
    "gocardless-api-token": (
        f'gocardless_access_token: "live_{tok(URLSAFE, 40)}"\n',
        'gocardless_access_token: "sandbox_token"\n',
    ),
    "sendgrid-api-token": (
        f"SENDGRID_API_KEY=SG.{tok(URLSAFE, 22)}.{tok(URLSAFE, 43)}\n",
        "SENDGRID_API_KEY=SG.your_sendgrid_api_key\n",
    ),
    "twilio-api-key": (f"TWILIO_API_KEY=SK{tok(HEX, 32)}\n", "TWILIO_API_KEY=SK00000000000000000000000000000000\n"),
    "twilio-auth-token": (f"TWILIO_AUTH_TOKEN={tok(HEX, 32)}\n", "TWILIO_AUTH_TOKEN=your_auth_token\n"),
    "mailgun-token": (
        f"MAILGUN_API_KEY=key-{tok(HEX, 32)}\n",
        "MAILGUN_API_KEY=key-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    "mailgun-signing-key": (
        f"MAILGUN_WEBHOOK_SIGNING_KEY={tok(HEX, 32)}-{tok(HEX, 8)}-{tok(HEX, 8)}\n",
        "MAILGUN_WEBHOOK_SIGNING_KEY=${MAILGUN_SIGNING}\n",
    ),
    "mailchimp-api-key": (f"MAILCHIMP_API_KEY={tok(HEX, 32)}-us21\n", "MAILCHIMP_API_KEY=<api-key>-us21\n"),
    "sendinblue-api-token": (f"BREVO_API_KEY=xkeysib-{tok(HEX, 64)}-{tok(ALNUM, 16)}\n", "BREVO_API_KEY=xkeysib-...\n"),
    "messagebird-api-token": (
        f'messagebird_access_key = "{tok(ALNUM, 25)}"\n',
        'messagebird_access_key = "test_gshuPaZoeEG6ovbc8M79w0QyM"\n',
    ),
    "shopify-token": (f"SHOPIFY_ACCESS_TOKEN=shpat_{tok(HEX, 32)}\n", "SHOPIFY_ACCESS_TOKEN=shpat_<token>\n"),
    "new-relic-user-api-key": (f'api_key: "NRAK-{tok(UPPER + DIGITS, 27)}"\n', 'api_key: "NRAK-XXXXXXXX"\n'),
    "new-relic-browser-api-token": (f'licenseKey: "NRJS-{tok(HEX, 19)}"\n', 'licenseKey: "NRJS-<key>"\n'),
    "datadog-api-key": (f"DATADOG_API_KEY={tok(HEX, 32)}\n", "DATADOG_API_KEY=<DATADOG_API_KEY>\n"),
    "sentry-auth-token": (f"SENTRY_AUTH_TOKEN=sntrys_{tok(B64, 60)}\n", "SENTRY_AUTH_TOKEN=sntrys_\n"),
    "grafana-token": (f"GRAFANA_TOKEN=glsa_{tok(ALNUM, 32)}_{tok(HEX, 8)}\n", "GRAFANA_TOKEN=glsa_<token>\n"),
    "linear-api-token": (f"LINEAR_API_KEY=lin_api_{tok(ALNUM, 40)}\n", "LINEAR_API_KEY=lin_api_xxx\n"),
    "postman-api-token": (f"POSTMAN_API_KEY=PMAK-{tok(HEX, 24)}-{tok(HEX, 34)}\n", "POSTMAN_API_KEY=PMAK-<key>\n"),
    "shippo-api-token": (f"SHIPPO_TOKEN=shippo_live_{tok(HEX, 40)}\n", "SHIPPO_TOKEN=shippo_live_<token>\n"),
    "easypost-api-token": (f"EASYPOST_API_KEY=EZAK{tok(ALNUM, 54)}\n", "EASYPOST_API_KEY=EZAK<key>\n"),
    "duffel-api-token": (f"DUFFEL_TOKEN=duffel_live_{tok(URLSAFE, 43)}\n", "DUFFEL_TOKEN=duffel_live_<token>\n"),
    "frameio-api-token": (f"FRAMEIO_TOKEN=fio-u-{tok(URLSAFE, 64)}\n", "FRAMEIO_TOKEN=fio-u-<token>\n"),
    "typeform-api-token": (f"TYPEFORM_TOKEN=tfp_{tok(URLSAFE, 59)}\n", "TYPEFORM_TOKEN=tfp_<token>\n"),
    "mapbox-secret-token": (
        f"MAPBOX_SECRET_TOKEN=sk.eyJ{tok(URLSAFE, 60)}.{tok(URLSAFE, 22)}\n",
        "MAPBOX_SECRET_TOKEN=sk.eyJ...\n",
    ),
    "age-secret-key": (
        f"AGE-SECRET-KEY-1{tok('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}\n",
        "# public key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
    ),
    "facebook-token": (f'FACEBOOK_APP_SECRET="{tok(HEX, 32)}"\n', 'FACEBOOK_APP_SECRET="<app-secret>"\n'),
    "twitter-token": (f"TWITTER_API_SECRET={tok(ALNUM, 50)}\n", "TWITTER_API_SECRET=${TWITTER_API_SECRET}\n"),
    "linkedin-client-secret": (f'linkedin_client_secret: "{tok(ALNUM, 16)}"\n', 'linkedin_client_secret: "<secret>"\n'),
    "dropbox-api-token": (f"DROPBOX_TOKEN=sl.{tok(URLSAFE, 138)}\n", "DROPBOX_TOKEN=sl.xxxxx\n"),
    "okta-api-token": (f"OKTA_API_TOKEN=00{tok(URLSAFE, 40)}\n", "OKTA_API_TOKEN={{ okta_token }}\n"),
    "symfony-secret": (f"APP_SECRET={tok(HEX, 32)}\n", "APP_SECRET=%env(APP_SECRET)%\n"),
    "openai-api-key": (
        f"OPENAI_API_KEY=sk-proj-{tok(URLSAFE, 74)}T3BlbkFJ{tok(URLSAFE, 74)}\n",
        "OPENAI_API_KEY=sk-proj-your-key-here\n",
    ),
    "anthropic-api-key": (
        f"ANTHROPIC_API_KEY=sk-ant-api03-{tok(URLSAFE, 93)}AA\n",
        "ANTHROPIC_API_KEY=sk-ant-api03-...\n",
    ),
    "hugging-face-access-token": (
        f"HF_TOKEN=hf_{tok(ALNUM, 34)}\n",
        "HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    ),
    "private-key": (
        private_key(),
        "-----BEGIN PUBLIC KEY-----\nMIIB" + pem_body(4) + "\n-----END PUBLIC KEY-----\n"
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
    ),
    "putty-private-key": (
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@ci\nPublic-Lines: 2\n"
        f"{tok(B64, 64)}\n{tok(B64, 4)}\nPrivate-Lines: 1\n{tok(B64, 44)}\nPrivate-MAC: {tok(HEX, 64)}\n",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\n",
    ),
    "jwt-token": (f'{{"access_token": "{jwt()}"}}\n', '{"access_token": "eyJhbGciOiJIUzI1NiJ9.e30"}\n'),
    "database-url-password": (
        f"DATABASE_URL=postgresql://billing:{tok(ALNUM, 18)}@db.internal:5432/billing\n",
        "DATABASE_URL=postgresql://user:password@localhost:5432/mydb\n",
    ),
    "generic-password": (
        f"DB_PASSWORD={tok(ALNUM, 6)}#{tok(ALNUM, 8)}!\n",
        "DB_PASSWORD=${DB_PASSWORD}\npassword: your_password_here\nself.password = options.password\n",
    ),
}

#: The file a case is scanned as, for rules limited to some paths (default: ``app/config/settings.env``).
CASE_PATHS = {"maven-settings-password": "root/.m2/settings.xml"}
