package proxy

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

func decisionName(d keystore.Decision) string {
	switch {
	case d.Deny:
		return "deny"
	case d.Encrypt:
		return "encrypt"
	}
	return "plaintext"
}

// finish reports the request to the access log and the observer.
func (s *Server) finish(ex *exchange) {
	status := ex.w.status
	if status == 0 {
		status = http.StatusOK
	}
	if s.obs != nil {
		s.obs.ObserveRequest(RequestStats{
			Op: ex.op, Status: status, ErrCode: ex.errCode, AuthFailed: ex.authFailed,
			Decision: ex.decision, KeyID: ex.keyID, RuleBucket: ex.ruleBucket, RulePrefix: ex.rulePrefix, BytesIn: ex.bytesIn, BytesOut: ex.w.n,
			Duration: time.Since(ex.start), Upstream: ex.upstream,
		})
	}
	lvl := zap.InfoLevel
	if status >= 500 {
		lvl = zap.WarnLevel
	}
	if c := s.log.Check(lvl, "request"); c != nil {
		c.Write(
			zap.String("request_id", ex.id),
			zap.String("op", ex.op),
			zap.String("bucket", ex.target.Bucket),
			zap.String("key", ex.target.Key),
			zap.String("key_id", ex.keyID),
			zap.String("access_key", ex.accessKey),
			zap.String("payload", ex.payload),
			zap.Int("status", status),
			zap.String("error", ex.errCode),
			zap.Int64("bytes_in", ex.bytesIn),
			zap.Int64("bytes_out", ex.w.n),
			zap.Duration("duration", time.Since(ex.start)),
		)
	}
}
