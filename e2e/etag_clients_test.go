package e2e

// Tools that compare the ETag with the MD5 of what they sent or received
// (issue 5): s3cmd and rclone, the Debian packages, with every MD5 check of
// theirs left on. Without MD5-consistent ETags s3cmd stops uploads with
// "MD5 Sums don't match!" and rclone reports "md5 hash differ".

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// fileMD5 is the hex MD5 of b.
func fileMD5(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// multipartETag is the ETag an unencrypted S3 gives a multipart upload of b
// in parts of partSize: the MD5 of the parts' MD5s, then "-" and the count.
func multipartETag(b []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(b); off += partSize {
		end := min(off+partSize, len(b))
		s := md5.Sum(b[off:end])
		sums = append(sums, s[:]...)
		n++
	}
	s := md5.Sum(sums)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(s[:]), n)
}

// runAll runs a program and returns its stdout and stderr together; a
// failing exit fails the test with the output.
func runAll(t *testing.T, environ []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = environ
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\noutput:\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// noneOf fails the test if out holds any of bad.
func noneOf(t *testing.T, what, out string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(out, b) {
			t.Errorf("%s: output holds %q:\n%s", what, b, out)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func proxyHostPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(env.httpsURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// s3cmd puts a file of one part and one of two (its multipart threshold is
// 15 MiB, multipart_chunk_size_mb), checking the ETag of every PUT and
// UploadPart against the MD5 it sent; gets them back; and finds with info,
// ls --list-md5 and sync --dry-run the MD5s of the local files.
//
// For its own uploads s3cmd stores the MD5 in x-amz-meta-s3cmd-attrs and
// its get and info prefer that to the ETag (the config file cannot turn
// this off), so a third object, "other", is written through the proxy by
// minio-go, without that attribute: there get, info, ls and sync rest on
// the proxy's ETags alone.
func TestS3cmdMD5(t *testing.T) {
	buckets(t)
	s3cmd := find(t, program{name: "s3cmd", path: "/usr/bin/s3cmd", debian: true})
	const chunkMB = 15
	home, cfg := s3cmdConfig(t, false, chunkMB)
	environ := append(os.Environ(), "HOME="+home)
	bad := []string{"MD5 Sums don't match", "MD5 signatures do not match", "WARNING", "ERROR"}
	run := func(args ...string) string {
		t.Helper()
		out := runAll(t, environ, s3cmd, append([]string{"-c", cfg, "--no-progress"}, args...)...)
		noneOf(t, "s3cmd "+strings.Join(args, " "), out, bad...)
		return out
	}

	dir := t.TempDir()
	files := map[string][]byte{
		"small": randomBytes(300<<10 + 17),   // one PUT
		"big":   randomBytes(20<<20 + 12345), // two parts: 15 and 5 MiB
		"other": randomBytes(256<<10 + 5),    // written by minio-go
	}
	prefix := uniqueKey(t, "s3cmd/") + "/"
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
		if name == "other" {
			if _, err := viaProxy(t, true).PutObject(t.Context(), "enc", prefix+name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		} else if out := run("put", filepath.Join(dir, name), "s3://enc/"+prefix+name); !strings.Contains(out, "upload:") {
			t.Errorf("s3cmd put %s: no upload reported:\n%s", name, out)
		}
		assertEncrypted(t, "enc", prefix+name, "k1", data)
	}

	// The ETags through the proxy are those of an unencrypted S3: the MD5,
	// and for the two parts the MD5 of their MD5s.
	etags := map[string]string{
		"small": fileMD5(files["small"]),
		"big":   multipartETag(files["big"], chunkMB<<20),
		"other": fileMD5(files["other"]),
	}
	for name, want := range etags {
		st, err := viaProxy(t, true).StatObject(t.Context(), "enc", prefix+name, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.ETag != want {
			t.Errorf("%s: ETag through the proxy %q, want %q", name, st.ETag, want)
		}
	}

	// get: s3cmd compares the MD5 of what it received with the
	// attribute's md5 or else the ETag, and warns when they differ.
	outDir := t.TempDir()
	for name, data := range files {
		out := filepath.Join(outDir, name)
		run("get", "s3://enc/"+prefix+name, out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Errorf("s3cmd get %s: %d bytes that differ from the %d put (%v)", name, len(got), len(data), err)
		}
	}

	// info ("MD5 sum:", from a HEAD) and ls --list-md5 (the listing's ETag,
	// or for a multipart ETag a HEAD) show the local files' MD5s.
	info := regexp.MustCompile(`MD5 sum:\s*(\S+)`)
	for name, data := range files {
		out := run("info", "s3://enc/"+prefix+name)
		if m := info.FindStringSubmatch(out); m == nil || m[1] != fileMD5(data) {
			t.Errorf("s3cmd info %s: %v, want MD5 sum %s:\n%s", name, m, fileMD5(data), out)
		}
		if name == "other" && strings.Contains(out, "s3cmd-attrs") {
			t.Errorf("s3cmd info %s: an s3cmd attribute on an object minio-go wrote:\n%s", name, out)
		}
	}
	ls := run("ls", "--list-md5", "s3://enc/"+prefix)
	listed := map[string]string{}
	for _, line := range strings.Split(ls, "\n") {
		if f := strings.Fields(line); len(f) == 5 && strings.HasPrefix(f[4], "s3://enc/"+prefix) {
			listed[strings.TrimPrefix(f[4], "s3://enc/"+prefix)] = f[3]
		}
	}
	for name, data := range files {
		if listed[name] != fileMD5(data) {
			t.Errorf("s3cmd ls --list-md5: %s has %q, want %s:\n%s", name, listed[name], fileMD5(data), ls)
		}
	}
	if len(listed) != len(files) {
		t.Errorf("s3cmd ls lists %d objects, want %d:\n%s", len(listed), len(files), ls)
	}

	// sync --dry-run: same sizes, so the MD5s (the listing's ETags; for
	// big its attribute) decide. Nothing must need uploading.
	syncRun := func() string {
		t.Helper()
		out := runAll(t, environ, s3cmd, "-c", cfg, "--no-progress", "sync", "--dry-run", "--check-md5", dir+"/", "s3://enc/"+prefix)
		return strings.ReplaceAll(out, "WARNING: Exiting now because of --dry-run", "")
	}
	noneOf(t, "s3cmd sync --dry-run", syncRun(), append(bad, "upload:", "MD5")...)

	// The control: local files of the same sizes with other bytes are
	// found to differ, so the comparison above did compare MD5s.
	for _, name := range []string{"small", "other"} {
		writeFile(t, filepath.Join(dir, name), randomBytes(len(files[name])))
	}
	ctl := syncRun()
	for _, name := range []string{"small", "other"} {
		if !strings.Contains(ctl, "'s3://enc/"+prefix+name+"'") {
			t.Errorf("s3cmd sync --dry-run after changing %s: not uploaded:\n%s", name, ctl)
		}
	}
	if strings.Contains(ctl, "'s3://enc/"+prefix+"big'") {
		t.Errorf("s3cmd sync --dry-run: big, unchanged, is uploaded:\n%s", ctl)
	}

	run("del", "--recursive", "--force", "s3://enc/"+prefix)
}

// rcloneEnv configures the remote "ssec:" for the proxy through rclone's
// environment variables, with an empty HOME and no config file.
func rcloneEnv(t *testing.T) []string {
	home := t.TempDir()
	// No AWS_* variables: rclone's AWS SDK would act on them (an
	// AWS_CA_BUNDLE even makes it refuse rclone's own transport).
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			base = append(base, kv)
		}
	}
	return append(base,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"RCLONE_CONFIG="+filepath.Join(home, "rclone.conf"),
		"RCLONE_CONFIG_SSEC_TYPE=s3",
		"RCLONE_CONFIG_SSEC_PROVIDER=Other",
		"RCLONE_CONFIG_SSEC_ENV_AUTH=false",
		"RCLONE_CONFIG_SSEC_ACCESS_KEY_ID="+env.clientAK,
		"RCLONE_CONFIG_SSEC_SECRET_ACCESS_KEY="+env.clientSK,
		"RCLONE_CONFIG_SSEC_ENDPOINT="+env.httpsURL,
		"RCLONE_CONFIG_SSEC_REGION=us-east-1",
		"RCLONE_CONFIG_SSEC_FORCE_PATH_STYLE=true",
	)
}

// rclone copies a tree up, checking each single PUT's object MD5 (the ETag
// of a HEAD) against the file's; `rclone check` compares the MD5s (the
// listing's ETags; for multipart objects rclone's X-Amz-Meta-Md5chksum)
// with no difference; and the tree comes back down with rclone checking
// each file's MD5 against the object's. rclone 1.60 does not reject a
// multipart upload whose ETag is not the MD5 of the part MD5s, so the test
// checks that ETag itself.
func TestRcloneCopyAndCheck(t *testing.T) {
	buckets(t)
	rclone := find(t, program{name: "rclone", path: "/usr/bin/rclone", debian: true})
	environ := rcloneEnv(t)
	const chunk = 5 << 20
	common := []string{"--ca-cert", env.caFile, "--s3-upload-cutoff", "10M", "--s3-chunk-size", "5M", "--retries", "1"}
	bad := []string{"ERROR", "hash differ", "corrupted", "Etag differ", "could not check hash"}
	run := func(args ...string) string {
		t.Helper()
		out := runAll(t, environ, rclone, append(append([]string{}, args...), common...)...)
		noneOf(t, "rclone "+strings.Join(args, " "), out, bad...)
		return out
	}

	src := t.TempDir()
	files := map[string][]byte{}
	for i := range 20 {
		name := fmt.Sprintf("d%d/sub%d/f%02d.bin", i%3, i%2, i)
		files[name] = randomBytes(1 + i*7919)
	}
	files["top.txt"] = []byte("hello through ssec-proxy\n")
	files["mid/twelve.bin"] = randomBytes(12<<20 + 3)  // multipart: 3 parts
	files["big/seventy.bin"] = randomBytes(70<<20 + 1) // multipart: 15 parts
	for name, data := range files {
		writeFile(t, filepath.Join(src, name), data)
	}
	prefix := uniqueKey(t, "rclone/")
	remote := "ssec:enc/" + prefix

	out := run("copy", "-v", src, remote)
	if !strings.Contains(out, "Copied (new)") {
		t.Errorf("rclone copy reports no copies:\n%s", out)
	}
	for _, name := range []string{"top.txt", "d0/sub0/f00.bin", "mid/twelve.bin", "big/seventy.bin"} {
		assertEncrypted(t, "enc", prefix+"/"+name, "k1", files[name])
	}

	// The multipart objects carry the ETag an unencrypted S3 gives them.
	for _, name := range []string{"mid/twelve.bin", "big/seventy.bin"} {
		st, err := viaProxy(t, true).StatObject(t.Context(), "enc", prefix+"/"+name, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := multipartETag(files[name], chunk); st.ETag != want {
			t.Errorf("%s: ETag through the proxy %q, want %q", name, st.ETag, want)
		}
	}

	wantCheck := func(what, out string) {
		t.Helper()
		if !strings.Contains(out, "0 differences found") {
			t.Errorf("%s: no \"0 differences found\":\n%s", what, out)
		}
		if !strings.Contains(out, fmt.Sprintf("%d matching files", len(files))) {
			t.Errorf("%s: want %d matching files:\n%s", what, len(files), out)
		}
		noneOf(t, what, out, "hashes could not be checked", "hash could not be checked", "not in", "hash differ")
	}
	wantCheck("rclone check local remote", run("check", src, remote))

	// md5sum: for single PUTs the listing's ETag; for multipart objects
	// rclone's X-Amz-Meta-Md5chksum (their ETag is not an MD5).
	sums := map[string]string{}
	for _, line := range strings.Split(run("md5sum", remote), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			sums[f[1]] = f[0]
		}
	}
	for name, data := range files {
		if sums[name] != fileMD5(data) {
			t.Errorf("rclone md5sum %s: %q, want %s", name, sums[name], fileMD5(data))
		}
	}
	if len(sums) != len(files) {
		keys := make([]string, 0, len(sums))
		for k := range sums {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("rclone md5sum lists %d files, want %d: %v", len(sums), len(files), keys)
	}

	// Down again: rclone checks each file's MD5 against the object's hash.
	dst := t.TempDir()
	out = run("copy", "-v", remote, dst)
	if !strings.Contains(out, "Copied (new)") {
		t.Errorf("rclone copy down reports no copies:\n%s", out)
	}
	wantCheck("rclone check local local2", run("check", src, dst))
	for name, data := range files {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: downloaded %d bytes that differ from the %d uploaded (%v)", name, len(got), len(data), err)
		}
	}
	// And the remote against the download, hashes from both sides.
	wantCheck("rclone check remote local2", run("check", remote, dst))

	run("purge", remote)
}

// s3cmdConfig writes an s3cmd config for the proxy (TLS with its CA, path
// style, V4 or V2 signatures, parts of chunkMB) in a new HOME.
func s3cmdConfig(t *testing.T, sigV2 bool, chunkMB int) (home, cfg string) {
	t.Helper()
	home = t.TempDir()
	cfg = filepath.Join(home, "s3cfg")
	hp := proxyHostPort(t)
	sig := "False"
	if sigV2 {
		sig = "True"
	}
	writeFile(t, cfg, []byte(fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
bucket_location = us-east-1
use_https = True
ca_certs_file = %s
check_ssl_certificate = True
check_ssl_hostname = True
signature_v2 = %s
multipart_chunk_size_mb = %d
progress_meter = False
`, env.clientAK, env.clientSK, hp, hp, env.caFile, sig, chunkMB)))
	return home, cfg
}
