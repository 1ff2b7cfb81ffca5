package proxy

import (
	"io"
	"strings"
	"testing"
)

// Security review probes (proxy/attack_test.go). Each test asserts the
// secure behaviour: it fails while the hole it names is open.

// expectRefused sends the request and fails when it is not refused with a
// 4xx or when anything reached the upstream.
func expectRefused(t *testing.T, p *testProxy, method, path, body string, hdr map[string]string) {
	t.Helper()
	before := p.up.count()
	resp := p.do(t, method, path, []byte(body), hdr)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("%s %s: status %d, want a 4xx refusal (%s)", method, path, resp.StatusCode, b)
	}
	// The proxy's own reads (the owner of an ACL's bucket) may go up;
	// nothing else may.
	n := 0
	for _, r := range p.up.all()[before:] {
		if r.Method != "GET" {
			n++
		}
	}
	if n > 0 {
		last := p.up.last(t)
		t.Errorf("%s %s reached the upstream (%d requests; last %s %s?%s, Content-Type %q, body %q)",
			method, path, n, last.Method, last.Path, last.Query, last.Header.Get("Content-Type"), truncateBody(last.Body))
	}
}

func truncateBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// MinIO's DeleteMultipleObjectsHandler runs trimLeadingSlash (path.Clean
// of a key that starts with "/") over every <Key>: "/.ssec-proxy/…",
// "//.ssec-proxy/…" and "/x/../.ssec-proxy/…" all delete the index entry
// ".ssec-proxy/…". checkDeleteKeys only looks at the prefix as sent.
func TestAttackDeleteObjectsLeadingSlashReachesIndex(t *testing.T) {
	p := newTestProxy(t)
	for _, key := range []string{
		"/.ssec-proxy/etags/x 1 2",
		"//.ssec-proxy/etags/x 1 2",
		"/a/../.ssec-proxy/etags/x 1 2",
		"/./.ssec-proxy/etags/x 1 2",
	} {
		t.Run(key, func(t *testing.T) {
			body := "<Delete><Object><Key>" + key + "</Key></Object></Delete>"
			expectRefused(t, p, "POST", "/plain?delete", body, nil)
		})
	}
}

// MinIO's bucket router registers PostPolicy (matched on a Content-Type
// of multipart/form-data, any query) before DeleteMultipleObjects
// (?delete). The proxy takes POST /b?delete for DeleteObjects whatever the
// Content-Type, forwards the Content-Type, and checks the body with
// xml.Unmarshal, which reads the first element only: a body that starts
// with an innocent <Delete/> and goes on as a multipart form (the preamble
// of a multipart body is ignored) is a browser form upload at MinIO: no
// SSE-C, a key of the form's choosing (".ssec-proxy/…" too). MinIO checks
// the form's policy signature, so this needs credentials the upstream
// knows (by default clients use the upstream's own).
func TestAttackDeleteObjectsAsPostPolicy(t *testing.T) {
	p := newTestProxy(t)
	body := "<Delete><Object><Key>x</Key></Object></Delete>\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nsecret/plaintext\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nDATA\r\n--b--\r\n"
	expectRefused(t, p, "POST", "/enc?delete", body, map[string]string{"Content-Type": "multipart/form-data; boundary=b"})
}

// checkAccessBody compares each grantee with the <Owner> the client wrote
// in the same document: claiming any canonical id as the owner lets the
// ACL grant FULL_CONTROL to that id.
func TestAttackACLOwnerIsTheClients(t *testing.T) {
	p := newTestProxy(t)
	acl := `<AccessControlPolicy><Owner><ID>attacker-canonical-id</ID></Owner><AccessControlList>` +
		`<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>attacker-canonical-id</ID></Grantee>` +
		`<Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`
	expectRefused(t, p, "PUT", "/enc?acl", acl, nil)
	expectRefused(t, p, "PUT", "/enc/k?acl", acl, nil)
}

// encoding/xml keeps the last of repeated elements of a struct field
// (and merges repeated <Grantee>s): a document that plainly grants to
// AllUsers passes when a later empty <URI/> overwrites the first.
func TestAttackACLRepeatedURIHidesPublicGrant(t *testing.T) {
	p := newTestProxy(t)
	for name, grantee := range map[string]string{
		"uri-then-empty-uri": `<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">` +
			`<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI><URI></URI><ID>owner</ID></Grantee>`,
		"two-grantees": `<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">` +
			`<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>` +
			`<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>owner</ID><URI/></Grantee>`,
		"two-ids": `<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">` +
			`<ID>someone-else</ID><ID>owner</ID></Grantee>`,
	} {
		t.Run(name, func(t *testing.T) {
			acl := `<AccessControlPolicy><Owner><ID>owner</ID></Owner><AccessControlList><Grant>` + grantee +
				`<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`
			expectRefused(t, p, "PUT", "/enc?acl", acl, nil)
		})
	}
}

// xml.Unmarshal neither checks the root element's name nor reads past
// it: a decoy first element is judged, the real document after it is
// not. (An upstream that takes the last root, or refuses the document,
// decides whether this bites; the proxy should not forward what it did
// not read.)
func TestAttackAccessBodyDecoyRoot(t *testing.T) {
	p := newTestProxy(t)
	acl := `<Decoy/><AccessControlPolicy><Owner><ID>owner</ID></Owner><AccessControlList><Grant>` +
		`<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>` +
		`<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`
	expectRefused(t, p, "PUT", "/enc?acl", acl, nil)
	all := "<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>" +
		"<BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>"
	none := strings.ReplaceAll(all, "true", "false")
	pab := "<PublicAccessBlockConfiguration>" + all + "</PublicAccessBlockConfiguration>" +
		"<PublicAccessBlockConfiguration>" + none + "</PublicAccessBlockConfiguration>"
	expectRefused(t, p, "PUT", "/enc?publicAccessBlock", pab, nil)
}

// Repeated elements and strconv.ParseBool's spellings: Go takes the last
// <BlockPublicAcls> and reads "1", "t", "TRUE" as true; an upstream that
// takes the first, or reads only "true", turns the block off.
func TestAttackPublicAccessBlockAmbiguous(t *testing.T) {
	p := newTestProxy(t)
	rest := "<IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>"
	for name, first := range map[string]string{
		"repeated": "<BlockPublicAcls>false</BlockPublicAcls><BlockPublicAcls>true</BlockPublicAcls>",
		"one":      "<BlockPublicAcls>1</BlockPublicAcls>",
		"t":        "<BlockPublicAcls>t</BlockPublicAcls>",
	} {
		t.Run(name, func(t *testing.T) {
			expectRefused(t, p, "PUT", "/enc?publicAccessBlock",
				"<PublicAccessBlockConfiguration>"+first+rest+"</PublicAccessBlockConfiguration>", nil)
		})
	}
}

// parseListing's decode drops url.QueryUnescape's error and uses "" for
// the key: an entry the proxy cannot decode is not recognised as
// reserved and is passed on. An index entry's name holds the user's
// object key, so a user who names an object "a%zz" makes the entry
// ".ssec-proxy/etags/a%zz …"; listed with encoding-type=url by an upstream
// that does not encode (MinIO does; others may not, or not everywhere),
// the entry reaches the client. A name that does not decode should be
// refused (or kept as its raw text for the reserved check).
func TestAttackListingUndecodableIndexEntryLeaks(t *testing.T) {
	p := newTestProxy(t)
	p.up.body = `<?xml version="1.0" encoding="UTF-8"?>` +
		`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>enc</Name><Prefix></Prefix><Marker></Marker>` +
		`<MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>` +
		`<Contents><Key>.ssec-proxy/etags/a%zz 0123 sealed</Key><Size>0</Size></Contents>` +
		`<Contents><Key>b</Key><Size>1</Size></Contents></ListBucketResult>`
	resp := p.do(t, "GET", "/enc?encoding-type=url", nil, nil)
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), ".ssec-proxy") {
		t.Errorf("status %d: an index entry reached the client: %s", resp.StatusCode, b)
	}
}

// An object named ".ssec-proxy" (the reserved folder without its slash):
// MinIO keeps keys as files, so with that object there no ".ssec-proxy/…"
// object can be written in the bucket: every index entry and upload
// record fails, and every CreateMultipartUpload under an encrypting rule
// with it. The name is refused like the folder, by every operation that
// names it.
func TestAttackReservedFolderAsObject(t *testing.T) {
	p := newTestProxy(t)
	expectRefused(t, p, "PUT", "/enc/.ssec-proxy", "blocker", nil)
	expectRefused(t, p, "PUT", "/plain/.ssec-proxy", "blocker", nil)
	expectRefused(t, p, "POST", "/enc/.ssec-proxy?uploads", "", nil)
	expectRefused(t, p, "PUT", "/enc/.ssec-proxy", "", map[string]string{"X-Amz-Copy-Source": "/enc/secret/x"})
	expectRefused(t, p, "DELETE", "/plain/.ssec-proxy", "", nil)
	expectRefused(t, p, "POST", "/plain?delete", "<Delete><Object><Key>.ssec-proxy</Key></Object></Delete>", nil)
}

// An upload whose key the proxy could not record (the record's PUT failed)
// is aborted upstream: the client gets a 502 and no upload is left behind
// that no instance could finish with the right key, nor list as the
// client's.
func TestUnrecordedUploadIsAborted(t *testing.T) {
	p := newTestProxy(t)
	p.up.body = `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>enc</Bucket><Key>big</Key><UploadId>u-1</UploadId></InitiateMultipartUploadResult>`
	p.up.failing = "/.ssec-proxy/uploads/"
	resp := p.do(t, "POST", "/enc/big?uploads", nil, nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 {
		t.Errorf("status %d, want 502 (%s)", resp.StatusCode, b)
	}
	abort := p.up.first(t, "DELETE", "/enc/big")
	if abort.Query != "uploadId=u-1" {
		t.Errorf("abort query %q, want uploadId=u-1", abort.Query)
	}
}

// A lifecycle rule is a way to delete objects by prefix without naming
// them: one whose prefix reaches .ssec-proxy/, or one for small objects
// across the bucket (index entries are empty), would expire the proxy's
// own objects (ETags and upload keys lost) apart from the objects they
// serve. Those are refused whatever allow_access_changes says; rules that
// cannot reach them pass unchanged.
func TestLifecycleRulesKeepOffTheIndex(t *testing.T) {
	p := newTestProxy(t)
	exp := `<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`
	rule := func(inner string) string {
		return `<LifecycleConfiguration><Rule><ID>r</ID>` + inner + exp + `</Rule></LifecycleConfiguration>`
	}
	for name, doc := range map[string]string{
		"filter-prefix":          rule(`<Filter><Prefix>.ssec-proxy/</Prefix></Filter>`),
		"filter-prefix-inside":   rule(`<Filter><Prefix>.ssec-proxy/etags/</Prefix></Filter>`),
		"filter-prefix-dot":      rule(`<Filter><Prefix>.</Prefix></Filter>`),
		"filter-prefix-bare":     rule(`<Filter><Prefix>.ssec-proxy</Prefix></Filter>`),
		"rule-prefix":            rule(`<Prefix>.ssec</Prefix>`),
		"and-prefix":             rule(`<Filter><And><Prefix>.ssec-proxy/uploads/</Prefix><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter>`),
		"small-whole-bucket":     rule(`<Filter><ObjectSizeLessThan>1024</ObjectSizeLessThan></Filter>`),
		"small-whole-bucket-and": rule(`<Filter><And><Prefix></Prefix><ObjectSizeLessThan>1024</ObjectSizeLessThan></And></Filter>`),
		"two-prefixes":           rule(`<Prefix>logs/</Prefix><Filter><Prefix>.ssec-proxy/</Prefix></Filter>`),
		"second-root":            rule(`<Filter><Prefix>logs/</Prefix></Filter>`) + rule(`<Filter><Prefix>.ssec-proxy/</Prefix></Filter>`),
		"empty-tag":              rule(`<Filter><And><Prefix>.ssec-proxy/</Prefix><Tag></Tag></And></Filter>`),
		"tag-without-key":        rule(`<Prefix>.ssec-proxy/</Prefix><Filter><Tag><Key></Key><Value>v</Value></Tag></Filter>`),
		"small-empty-tag":        rule(`<Filter><And><ObjectSizeLessThan>100</ObjectSizeLessThan><Tag/></And></Filter>`),
		"two-filters":            rule(`<Filter><Prefix>.ssec-proxy/</Prefix></Filter><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>`),
		"old-root-name":          `<BucketLifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>.</Prefix></Filter>` + exp + `</Rule></BucketLifecycleConfiguration>`,
	} {
		t.Run(name, func(t *testing.T) { expectRefused(t, p, "PUT", "/plain?lifecycle", doc, nil) })
	}
	for name, doc := range map[string]string{
		"whole-bucket-by-age": rule(`<Filter></Filter>`),
		"empty-prefix":        rule(`<Filter><Prefix></Prefix></Filter>`),
		"other-prefix":        rule(`<Filter><Prefix>logs/</Prefix></Filter>`),
		"small-under-prefix":  rule(`<Filter><And><Prefix>logs/</Prefix><ObjectSizeLessThan>1024</ObjectSizeLessThan></And></Filter>`),
		"old-root-name":       `<BucketLifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>logs/</Prefix></Filter>` + exp + `</Rule></BucketLifecycleConfiguration>`,
		"small-tagged":        rule(`<Filter><And><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeLessThan>1024</ObjectSizeLessThan></And></Filter>`),
	} {
		t.Run(name, func(t *testing.T) {
			resp := p.do(t, "PUT", "/plain?lifecycle", []byte(doc), nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d (%s)", resp.StatusCode, b)
			}
			if got := p.up.last(t); got.Method != "PUT" || string(got.Body) != doc {
				t.Errorf("upstream got %s %q, want the document unchanged", got.Method, got.Body)
			}
		})
	}
}
