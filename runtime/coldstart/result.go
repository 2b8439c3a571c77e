package coldstart

import (
	"context"
	"errors"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/runtime/sealed"
)

const resultOK = "ok"

// failureClass is a small, fixed label for the result metric.
func failureClass(err error) string {
	classes := []struct {
		target error
		name   string
	}{
		{kbsclient.ErrPolicyDenied, "policy_denied"},
		{kbsclient.ErrVersionMismatch, "version_mismatch"},
		{kbsclient.ErrAttestationFailed, "attestation_failed"},
		{kbsclient.ErrSessionExpired, "session_expired"},
		{kbsclient.ErrInsecureTEE, "config"},
		{kbsclient.ErrUnsupportedTEE, "config"},
		{kbsclient.ErrNotFound, "not_found"},
		{kbsclient.ErrDecrypt, "kbs_reply_decrypt"},
		{kbsclient.ErrBadReply, "bad_reply"},
		{sealed.ErrDecrypt, "model_decrypt"},
		{sealed.ErrNotModel, "model_decrypt"},
		{sealed.ErrBadKey, "bad_key"},
		{sealed.ErrMalformed, "malformed_model"},
		{sealed.ErrUnsupported, "malformed_model"},
		{sealed.ErrTooLarge, "malformed_model"},
		{context.DeadlineExceeded, "deadline"},
		{context.Canceled, "canceled"},
	}
	for _, c := range classes {
		if errors.Is(err, c.target) {
			return c.name
		}
	}
	return "other"
}
