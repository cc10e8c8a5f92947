"""The ALB's public certificate: ACM, for the domain and every name one level under it,
proved by a DNS record in the stack's hosted zone.

ACM drops the `*.` of a wildcard when it derives the validation record, so `example.com` and
`*.example.com` share one CNAME (ACM User Guide, "DNS validation"): one Route 53 record proves
both, and a second would collide with it. The certificate is in the provider's region, the
ALB's (an ALB can only use a certificate of its own region).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PublicCertificateArgs:
    domain: str
    zone_id: str


class PublicCertificate(pulumi.ComponentResource):
    # The ARN once ACM has issued it (the validation's output: a listener given it will not
    # fail on a pending certificate).
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: PublicCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:edge:PublicCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            name,
            domain_name=args.domain,
            subject_alternative_names=[f"*.{args.domain}"],
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            # Certificate Transparency logging stays on: browsers distrust certificates
            # that are not logged.
            options={"certificate_transparency_logging_preference": "ENABLED"},
            # A renewed certificate is issued before the old one goes.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-validation",
            zone_id=args.zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            # The record may outlive an earlier certificate for the same names.
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            name,
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        self.arn = validation.certificate_arn
        self.register_outputs({"arn": self.arn})
