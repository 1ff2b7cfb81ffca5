package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

func testKey(id string, b byte) *keystore.Key {
	var raw [32]byte
	for i := range raw {
		raw[i] = b
	}
	return keystore.NewKey(id, raw)
}

func TestSealOpenETag(t *testing.T) {
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	sealed := etagindex.Seal(k1, "up123", "0123456789abcdef0123456789abcdef")
	if strings.Contains(sealed, "0123456789abcdef") {
		t.Fatal("the sealed entry shows the MD5")
	}
	if strings.ContainsAny(sealed, " /") {
		t.Fatalf("sealed %q holds a space or slash: it would break the entry name", sealed)
	}
	if v, ok := etagindex.Open([]*keystore.Key{k2, k1}, "up123", sealed); !ok || v != "0123456789abcdef0123456789abcdef" {
		t.Errorf("open with the right key among others: %q %v", v, ok)
	}
	if _, ok := etagindex.Open([]*keystore.Key{k2}, "up123", sealed); ok {
		t.Error("opened with the wrong key")
	}
	if _, ok := etagindex.Open([]*keystore.Key{k1}, "other", sealed); ok {
		t.Error("opened for another upstream ETag: an entry must not move to another object")
	}
}

func TestParseEntry(t *testing.T) {
	for _, key := range []string{"a", "dir/with space/x y z", "ü/%2F/..//", ""} {
		name := etagindex.EntryName(key, "abc-2", "SEALED_x")
		k, e, s, ok := etagindex.ParseEntry(name)
		if !ok || k != key || e != "abc-2" || s != "SEALED_x" {
			t.Errorf("%q → %q %q %q %v", name, k, e, s, ok)
		}
	}
	for _, bad := range []string{"other/a b c", indexPrefix + "nospace", indexPrefix + "one space"} {
		if _, _, _, ok := etagindex.ParseEntry(bad); ok && bad != indexPrefix+"one space" {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestMultipartETag(t *testing.T) {
	p1, p2 := md5.Sum([]byte("part one")), md5.Sum([]byte("part two"))
	h := md5.New()
	h.Write(p1[:])
	h.Write(p2[:])
	want := hex.EncodeToString(h.Sum(nil)) + "-2"
	got, ok := multipartETag([]string{`"` + hex.EncodeToString(p1[:]) + `"`, hex.EncodeToString(p2[:])})
	if !ok || got != want {
		t.Errorf("got %q %v, want %q", got, ok, want)
	}
	if _, ok := multipartETag([]string{"not-an-md5"}); ok {
		t.Error("accepted a part ETag that is not an MD5")
	}
}

const listV2Page = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>enc</Name><Prefix></Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>` +
	`<Contents><Key>.ssec-proxy/etags/a up1 S</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;d41d8cd98f00b204e9800998ecf8427e&#34;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>` +
	`<Contents><Key>a</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;up1&#34;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>` +
	`<Contents><Key>b &amp; c</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;up2&#34;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>` +
	`<CommonPrefixes><Prefix>.ssec-proxy/</Prefix></CommonPrefixes></ListBucketResult>`

func TestListingRewrite(t *testing.T) {
	pl, err := parseListing([]byte(listV2Page), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.objects) != 2 || pl.objects[0].key != "a" || pl.objects[1].key != "b & c" || pl.objects[1].etag != "up2" {
		t.Fatalf("objects %+v", pl.objects)
	}
	if len(pl.drop) != 2 || pl.count != 4 {
		t.Fatalf("drop %v count %d", pl.drop, pl.count)
	}
	out := string(splice([]byte(listV2Page), pl, map[int]string{0: "md5a"}, nil, nil))
	for _, want := range []string{"<KeyCount>2</KeyCount>", "<Key>a</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;md5a&#34;</ETag>", "<ETag>&#34;up2&#34;</ETag>", "</ListBucketResult>"} {
		if !strings.Contains(out, want) {
			t.Errorf("rewritten listing lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ".ssec-proxy") {
		t.Errorf("the index shows in the listing:\n%s", out)
	}
	if _, err := parseListing([]byte(out), false); err != nil {
		t.Errorf("the rewritten listing is not XML: %v", err)
	}
	// encoding-type=url keys
	enc := strings.ReplaceAll(listV2Page, "<Key>b &amp; c</Key>", "<Key>b+%26+c</Key>")
	pl, err = parseListing([]byte(enc), true)
	if err != nil || pl.objects[1].key != "b & c" {
		t.Errorf("url-encoded key: %v %+v", err, pl.objects)
	}
}

func TestRewriteResultETag(t *testing.T) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LastModified>2026-01-01T00:00:00Z</LastModified><ETag>"upstream"</ETag></CopyObjectResult>`)
	var seen string
	out, err := rewriteResultETag(body, "CopyObjectResult", func(up string) string { seen = up; return "client" })
	if err != nil || seen != "upstream" || !bytes.Contains(out, []byte("<ETag>&#34;client&#34;</ETag>")) {
		t.Errorf("got %s (%v), saw %q", out, err, seen)
	}
	errBody := []byte(`<Error><Code>InternalError</Code></Error>`)
	out, _ = rewriteResultETag(errBody, "CopyObjectResult", func(string) string { t.Error("called on an error"); return "" })
	if !bytes.Equal(out, errBody) {
		t.Error("an error body was changed")
	}
}

func TestEtagMatches(t *testing.T) {
	for _, tc := range []struct {
		list, etag string
		want       bool
	}{
		{`"abc"`, "abc", true}, {`"x", "abc"`, "abc", true}, {`*`, "abc", true}, {`W/"abc"`, "abc", true}, {`"abd"`, "abc", false},
	} {
		if got := etagMatches(tc.list, tc.etag); got != tc.want {
			t.Errorf("etagMatches(%q, %q) = %v", tc.list, tc.etag, got)
		}
	}
}

func FuzzParseListing(f *testing.F) {
	f.Add([]byte(listV2Page), false)
	f.Add([]byte(`<ListVersionsResult><Version><Key>k</Key><ETag>"e"</ETag></Version><DeleteMarker><Key>.ssec-proxy/x</Key></DeleteMarker></ListVersionsResult>`), false)
	f.Fuzz(func(t *testing.T, body []byte, urlEnc bool) {
		pl, err := parseListing(body, urlEnc)
		if err != nil {
			return
		}
		etags := map[int]string{}
		for i := range pl.objects {
			etags[i] = "x"
		}
		out := splice(body, pl, etags, nil, nil) // must not panic
		if len(pl.drop) == 0 && len(etags) == 0 && !bytes.Equal(out, body) {
			t.Fatal("nothing to change, yet the body changed")
		}
	})
}

// The scanner reads a page as encoding/xml does, or leaves it to it.
func FuzzParseListingScanner(f *testing.F) {
	f.Add([]byte(listV2Page), false)
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Version><Key>a&amp;b &#x9;&lt;</Key><ETag>&#34;e&#34;</ETag><Owner><ID>x</ID></Owner></Version><DeleteMarker><Key>.ssec-proxy/x</Key><ETag/></DeleteMarker><KeyCount> 2 </KeyCount></ListVersionsResult>`), false)
	f.Add([]byte(`<R><CommonPrefixes><Prefix>.ssec-proxy%2F</Prefix></CommonPrefixes><Contents><Key>k%20x</Key><ETag>"e"</ETag></Contents><Contents/></R>`), true)
	f.Add([]byte(`<R><Contents><Key>a<!-- c -->b</Key></Contents></R>`), false)
	f.Add([]byte("<R><Contents><Key>a\r\nb</Key><ETag><![CDATA[x]]></ETag></Contents></R>"), false)
	f.Add([]byte("<R><Contents><:Key>.ssec-proxy/x</:Key><ETag>e</ETag></Contents><:KeyCount>5</:KeyCount></R>"), false)
	f.Add([]byte("<R><CommonPrefixes><Prefix>.ssec<?p?>-proxy/</Prefix></CommonPrefixes><KeyCount>1<?p?>0</KeyCount></R>"), false)
	f.Add([]byte("<R a=b><?>x?><Contents><Key>\xff]]></Key></Contents></R>"), false)
	f.Fuzz(func(t *testing.T, body []byte, urlEnc bool) {
		slow, serr := readListing(newXMLTokens(body), urlEnc)
		fast, ferr := readListing(&scanner{body: body}, urlEnc)
		if serr != nil {
			if ferr == nil {
				t.Fatalf("the scanner reads a page encoding/xml refuses (%v)", serr)
			}
			return
		}
		if ferr == errNotSimple {
			return // encoding/xml reads it
		}
		if ferr != nil {
			t.Fatalf("encoding/xml reads the page, the scanner fails: %v", ferr)
		}
		if !reflect.DeepEqual(slow, fast) {
			t.Fatalf("the scanner read\n%+v\nencoding/xml read\n%+v", fast, slow)
		}
	})
}

// The listings real services send are in the scanner's subset.
func TestParseListingScansRealListings(t *testing.T) {
	pretty := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n" +
		"  <KeyCount>3</KeyCount>\n  <Contents>\n    <Key>a &amp; b &lt;c&gt; &#39;d&#39;</Key>\n    <ETag>&quot;0123&quot;</ETag>\n" +
		"    <Owner><ID>x</ID><DisplayName/></Owner>\n  </Contents>\n  <Contents/>\n" +
		"  <CommonPrefixes>\n    <Prefix>.ssec-proxy/</Prefix>\n  </CommonPrefixes>\n</ListBucketResult>\n"
	for _, body := range []string{listV2Page, string(listing1000()), pretty} {
		fast, err := readListing(&scanner{body: []byte(body)}, false)
		if err != nil {
			t.Fatalf("the scanner leaves a plain listing to encoding/xml: %v", err)
		}
		slow, err := readListing(newXMLTokens([]byte(body)), false)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("the scanner read\n%+v\nencoding/xml read\n%+v (%v)", fast, slow, err)
		}
	}
	pl, _ := parseListing([]byte(pretty), false)
	if len(pl.objects) != 2 || pl.objects[0].key != "a & b <c> 'd'" || pl.objects[0].etag != "0123" || len(pl.drop) != 1 {
		t.Fatalf("read %+v", pl)
	}
}

// A reserved common prefix or a KeyCount split by a processing
// instruction is still seen whole, and a name with an empty prefix
// (<:Key>) is not the field it ends with.
func TestParseListingSplitTextAndOddNames(t *testing.T) {
	body := []byte("<R><CommonPrefixes><Prefix>.ssec<?p?>-proxy/</Prefix></CommonPrefixes><KeyCount>1<?p?>0</KeyCount></R>")
	pl, err := parseListing(body, false)
	if err != nil || len(pl.drop) != 1 || pl.count != 10 {
		t.Fatalf("parse = %+v, %v; want the prefix dropped and a count of 10", pl, err)
	}
	if out := string(splice(body, pl, nil, nil, nil)); out != "<R><KeyCount>9</KeyCount></R>" {
		t.Fatalf("spliced to %q", out)
	}
	pl, err = parseListing([]byte("<R><Contents><:Key>.ssec-proxy/x</:Key><ETag>e</ETag></Contents></R>"), false)
	if err != nil || len(pl.drop) != 0 || len(pl.objects) != 1 || pl.objects[0].key != "" {
		t.Fatalf("parse = %+v, %v; <:Key> is not <Key>", pl, err)
	}
}

// What indexObjects.List reads of a page of the index.
func TestParseListingIndexPage(t *testing.T) {
	name := etagindex.EntryName("a&b", "up1", "sealed")
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult><IsTruncated>true</IsTruncated>` +
		`<Contents><Key>` + strings.ReplaceAll(name, "&", "&amp;") + `</Key></Contents>` +
		`<NextContinuationToken>tok&#43;1=</NextContinuationToken></ListBucketResult>`)
	pl, err := parseListing(body, false)
	if err != nil || !pl.truncated || pl.nextToken != "tok+1=" || len(pl.reserved) != 1 || pl.reserved[0] != name {
		t.Fatalf("parse = %+v, %v", pl, err)
	}
	if k, e, sealed, ok := etagindex.ParseEntry(pl.reserved[0]); !ok || k != "a&b" || e != "up1" || sealed != "sealed" {
		t.Fatalf("entry %q %q %q %v", k, e, sealed, ok)
	}
}
