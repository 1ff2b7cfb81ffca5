package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// Benchmarks of the proxy's per-request and per-byte work, with allocation
// counts (issue 6; the end-to-end figures are in docs/PERFORMANCE.md,
// made by `make bench`). The aws-chunked decoder's are in proxy/sigv4.

// benchServer is a Server over a config with a few rules; the upstream is
// never contacted.
func benchServer(b *testing.B) *Server {
	b.Helper()
	dir := b.TempDir()
	for i, id := range []string{"cur", "old"} {
		if err := os.WriteFile(filepath.Join(dir, id+".key"), []byte(strings.Repeat(string(rune('a'+i)), 32)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	yml := fmt.Sprintf(`state_dir: %[1]s
upstream:
  endpoint: https://127.0.0.1:9000
  region: us-east-1
  access_key: up-ak
  secret_key: up-secret-key-0123456789
clients:
  - access_key: %[2]s
    secret_key: %[3]s
keys:
  - {id: cur, file: %[1]s/cur.key}
  - {id: old, file: %[1]s/old.key}
rules:
  - {bucket: enc, key: cur, previous: [old]}
  - {bucket: enc, prefix: public/, encrypt: false}
  - {bucket: enc, prefix: backups/daily/, key: cur}
  - {bucket: "*", prefix: star/, key: old}
  - {bucket: plain, encrypt: false}
default: deny
`, dir, testAK, testSK)
	cfg, err := config.Parse([]byte(yml), "bench.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Config: cfg, Keyring: ring})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkUpstreamBuild is building and signing the upstream request of a
// PutObject with SSE-C headers (UNSIGNED-PAYLOAD upstream).
func BenchmarkUpstreamBuild(b *testing.B) {
	s := benchServer(b)
	rt := s.rt.Load()
	d := rt.ring.Match("enc", "backups/daily/2026-11-29.tar")
	in := http.Header{
		"Content-Type":         {"application/octet-stream"},
		"X-Amz-Meta-Owner":     {"someone"},
		"X-Amz-Date":           {"20261129T000000Z"},
		"Authorization":        {"AWS4-HMAC-SHA256 Credential=..."},
		"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"},
	}
	ctx := context.Background()
	put := routeOf(opPutObject)
	b.ReportAllocs()
	for b.Loop() {
		h := put.outboundHeaders(in)
		ur := &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: "enc", Key: "backups/daily/2026-11-29.tar"},
			Query: url.Values{}, Header: h, Body: strings.NewReader("x"), Length: 1}
		ur.decide(keyed(d.Key))
		if _, err := rt.up.build(ctx, ur); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpstreamBuildTrailer is the same for a body that carries a
// checksum trailer upstream (aws-chunked framing by minio-go's signer).
func BenchmarkUpstreamBuildTrailer(b *testing.B) {
	s := benchServer(b)
	rt := s.rt.Load()
	d := rt.ring.Match("enc", "k")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ur := &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: "enc", Key: "k"},
			Query: url.Values{}, Header: http.Header{}, Body: strings.NewReader("x"), Length: 1,
			Trailer: http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}}
		ur.decide(keyed(d.Key))
		if _, err := rt.up.build(ctx, ur); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanGetObject is the server path of a GetObject up to the
// upstream request: target parsing, client signature check, rule lookup,
// SSE-C headers, request plan.
func BenchmarkPlanGetObject(b *testing.B) {
	s := benchServer(b)
	req := httptest.NewRequest(http.MethodGet, "http://localhost:8443/enc/backups/daily/2026-11-29.tar", nil)
	req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	signed := signer.SignV4(*req, testAK, testSK, "", "us-east-1")
	b.ReportAllocs()
	for b.Loop() {
		rt := s.rt.Load()
		t, err := parseTarget(signed, rt.domain)
		if err != nil {
			b.Fatal(err)
		}
		auth, err := rt.verifier.Verify(signed)
		if err != nil {
			b.Fatal(err)
		}
		ax := &authedExchange{&exchange{rt: rt, target: t}, auth}
		r := signed.WithContext(context.WithValue(signed.Context(), infoKey, &reqInfo{target: t, query: signed.URL.Query()}))
		p, err := s.plan(routeOf(opGetObject), ax, r)
		if err != nil || len(p.keys) == 0 {
			b.Fatal(err, p)
		}
	}
}

// BenchmarkRuleMatch is the rule lookup alone, as plan does it.
func BenchmarkRuleMatch(b *testing.B) {
	ring := benchServer(b).rt.Load().ring
	b.ReportAllocs()
	for b.Loop() {
		if d := ring.Match("enc", "backups/daily/2026-11-29.tar"); !d.Encrypt {
			b.Fatal("no encrypting rule")
		}
	}
}

// BenchmarkSealETag is sealing a client ETag for an index entry (one per
// write under an encrypting rule).
func BenchmarkSealETag(b *testing.B) {
	k := testKey("cur", 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = etagindex.Seal(k, "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "d41d8cd98f00b204e9800998ecf8427e")
	}
}

// BenchmarkOpenETag opens an entry sealed with the previous key, so both
// keys are tried (one per index entry read on a cache miss).
func BenchmarkOpenETag(b *testing.B) {
	cur, old := testKey("cur", 1), testKey("old", 2)
	sealed := etagindex.Seal(old, "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "d41d8cd98f00b204e9800998ecf8427e")
	keys := []*keystore.Key{cur, old}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := etagindex.Open(keys, "0a1b2c3d4e5f60718293a4b5c6d7e8f9", sealed); !ok {
			b.Fatal("not opened")
		}
	}
}

// listing1000 is a ListObjectsV2 page of 1,000 objects and their index
// entries' common prefix.
func listing1000() []byte {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>enc</Name><Prefix></Prefix><KeyCount>1001</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>`)
	for i := range 1000 {
		fmt.Fprintf(&sb, `<Contents><Key>backups/daily/object-%04d.tar</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;up%04d&#34;</ETag><Size>1048576</Size><StorageClass>STANDARD</StorageClass></Contents>`, i, i)
	}
	sb.WriteString(`<CommonPrefixes><Prefix>.ssec-proxy/</Prefix></CommonPrefixes></ListBucketResult>`)
	return []byte(sb.String())
}

// BenchmarkListingRewrite is rewriting a 1,000-object listing page whose
// client ETags are all cached: parse, look up, splice.
func BenchmarkListingRewrite(b *testing.B) {
	s := benchServer(b)
	rt := s.rt.Load()
	for i := range 1000 {
		s.etags.Put("enc", fmt.Sprintf("up%04d", i), fmt.Sprintf("%032x", i))
	}
	body := listing1000()
	ex := &exchange{rt: rt}
	q := url.Values{"list-type": {"2"}}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := s.rewriteListing(ctx, ex, "enc", q, body)
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkETagMD5 is the per-byte cost of the client ETag: the MD5 that
// verifiedBody computes over every byte written under an encrypting rule.
func BenchmarkETagMD5(b *testing.B) {
	buf := make([]byte, 128<<10)
	h := md5.New()
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		h.Write(buf)
	}
}

// benchTrailerStream reads the framed upstream body of a 4 MiB PUT with a
// checksum trailer the way the transport does (a 128 KiB bufio.Writer).
func benchTrailerStream(b *testing.B, frame func(body io.Reader, n int64, tr http.Header) io.Reader) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (4<<20)/16)
	w := bufio.NewWriterSize(io.Discard, 128<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tr := http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}
		if _, err := w.ReadFrom(frame(bytes.NewReader(data), int64(len(data)), tr)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrailerBody is the proxy's aws-chunked framing (trailerBody).
func BenchmarkTrailerBody(b *testing.B) {
	benchTrailerStream(b, func(body io.Reader, n int64, tr http.Header) io.Reader {
		return newTrailerBody(body, n, tr)
	})
}

// BenchmarkTrailerBodyMinioGo is the framing it replaced: minio-go's
// StreamingUnsignedV4 (through signer.SignV4Trailer).
func BenchmarkTrailerBodyMinioGo(b *testing.B) {
	benchTrailerStream(b, func(body io.Reader, n int64, tr http.Header) io.Reader {
		req, _ := http.NewRequest(http.MethodPut, "https://127.0.0.1:9000/b/k", body)
		req.ContentLength = n
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		return signer.SignV4Trailer(*req, "ak", "sk", "", "us-east-1", tr).Body
	})
}

// BenchmarkIndexPage is reading one page of the ETag index (1,000
// entries), as indexObjects.List does for a listing or a HEAD the cache cannot
// answer.
func BenchmarkIndexPage(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>enc</Name><Prefix>.ssec-proxy/etags/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>`)
	for i := range 1000 {
		fmt.Fprintf(&sb, `<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>`,
			etagindex.EntryName(fmt.Sprintf("backups/daily/object-%04d.tar", i), fmt.Sprintf("%032x", i), strings.Repeat("A", 60)))
	}
	sb.WriteString(`<NextContinuationToken>abc</NextContinuationToken></ListBucketResult>`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		pl, err := parseListing(body, false)
		if err != nil || len(pl.reserved) != 1000 || !pl.truncated {
			b.Fatal(err)
		}
	}
}
