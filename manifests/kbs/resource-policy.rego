# Trustee KBS resource policy for Veil.
#
# input = the claims of the verified attestation token (EAR);
# data  = the request: plugin name and resource path.
#
# Only the resource plugin, only Veil's model key, and only for a TDX guest
# (Azure vTPM-based or bare metal) whose evidence the attestation service
# appraised as "affirming", i.e. every measurement - firmware, kernel, the
# peer-pod image and the initdata in PCR 8 / MRCONFIGID - matched Trustee's
# reference values. Everything else, including the "sample" TEE, is denied.
package policy

import rego.v1

default allow := false

model_key := ["default", "veil", "fraud-model-key"]

allow if {
	data.plugin == "resource"
	model_key_requested
	tdx_affirming
}

# Trustee after 2025-12 passes the path as a list of segments, older
# releases as one string.
model_key_requested if data["resource-path"] == model_key

model_key_requested if data["resource-path"] == concat("/", model_key)

tdx_affirming if {
	cpu := input.submods.cpu0
	cpu["ear.status"] == "affirming"
	some tee in ["az-tdx-vtpm", "tdx"]
	cpu["ear.veraison.annotated-evidence"][tee]
}
