package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A client program found on this machine.
type program struct {
	name string // for the test name
	path string
	// debian marks the Debian packages that scripts/deps.sh installs: under
	// `make test` (SSEC_INTEGRATION=require) their absence is a failure.
	debian bool
}

func find(t *testing.T, p program) string {
	t.Helper()
	if _, err := os.Stat(p.path); err != nil {
		if p.debian && os.Getenv("SSEC_INTEGRATION") == "require" {
			t.Fatalf("%s is not installed (scripts/deps.sh --clients installs it)", p.path)
		}
		t.Skipf("*** %s not found: skipping this client", p.path)
	}
	return p.path
}

// awsClis are the Debian awscli (v2, UNSIGNED-PAYLOAD with Content-MD5 and
// Expect: 100-continue) and the image's pip aws-cli 1.x (aws-chunked with a
// CRC32 trailer), when present.
func awsClis() []program {
	progs := []program{{name: "debian-awscli", path: "/usr/bin/aws", debian: true}}
	if p, err := exec.LookPath("aws"); err == nil && p != "/usr/bin/aws" {
		progs = append(progs, program{name: "path-aws", path: p})
	}
	return progs
}

// clientEnv is the environment a user sets for the proxy, with an empty
// HOME so that no personal config interferes.
func clientEnv(t *testing.T) []string {
	home := t.TempDir()
	cfg := filepath.Join(home, "aws-config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(),
		"HOME="+home,
		"AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_ACCESS_KEY_ID="+env.clientAK,
		"AWS_SECRET_ACCESS_KEY="+env.clientSK,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CA_BUNDLE="+env.caFile,
		"AWS_ENDPOINT_URL="+env.httpsURL,
		"SSEC_ENDPOINT="+env.httpsURL,
		"AWS_PAGER=",
	)
}

func runProgram(t *testing.T, environ []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = environ
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func TestAWSCLI(t *testing.T) {
	buckets(t)
	for _, p := range awsClis() {
		t.Run(p.name, func(t *testing.T) {
			aws := find(t, p)
			environ := clientEnv(t)
			dir := t.TempDir()
			big := randomBytes(17<<20 + 99) // over the cli's 8 MiB multipart threshold
			small := randomBytes(4321)
			bigFile, smallFile, out := filepath.Join(dir, "big"), filepath.Join(dir, "small"), filepath.Join(dir, "out")
			_ = os.WriteFile(bigFile, big, 0o600)
			_ = os.WriteFile(smallFile, small, 0o600)
			prefix := uniqueKey(t, "cli/") + "/"
			ep := "--endpoint-url=" + env.httpsURL

			runProgram(t, environ, aws, ep, "s3", "cp", bigFile, "s3://enc/"+prefix+"big")
			assertEncrypted(t, "enc", prefix+"big", "k1", big)
			runProgram(t, environ, aws, ep, "s3", "cp", "s3://enc/"+prefix+"big", out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, big) {
				t.Fatalf("aws s3 cp download: %d bytes differ", len(got))
			}
			runProgram(t, environ, aws, ep, "s3api", "put-object", "--bucket", "enc", "--key", prefix+"small", "--body", smallFile)
			assertEncrypted(t, "enc", prefix+"small", "k1", small)
			head := runProgram(t, environ, aws, ep, "s3api", "head-object", "--bucket", "enc", "--key", prefix+"small")
			if !strings.Contains(head, `"ContentLength": 4321`) {
				t.Errorf("head-object: %s", head)
			}
			runProgram(t, environ, aws, ep, "s3", "cp", "s3://enc/"+prefix+"small", "s3://enc/"+prefix+"copied")
			assertEncrypted(t, "enc", prefix+"copied", "k1", small)
			ls := runProgram(t, environ, aws, ep, "s3", "ls", "s3://enc/"+prefix)
			for _, k := range []string{"big", "small", "copied"} {
				if !strings.Contains(ls, k) {
					t.Errorf("aws s3 ls misses %s:\n%s", k, ls)
				}
			}
			runProgram(t, environ, aws, ep, "s3", "rm", "--recursive", "s3://enc/"+prefix)
			// aws s3 ls exits 1 when it lists nothing.
			cmd := exec.Command(aws, ep, "s3", "ls", "s3://enc/"+prefix)
			cmd.Env = environ
			if out, err := cmd.Output(); err == nil || strings.TrimSpace(string(out)) != "" {
				t.Errorf("after rm, ls still lists: %s", out)
			}
		})
	}
}

func TestBoto3(t *testing.T) {
	buckets(t)
	progs := []program{{name: "debian-python3-boto3", path: "/usr/bin/python3", debian: true}}
	if p, err := exec.LookPath("python3"); err == nil && p != "/usr/bin/python3" {
		if exec.Command(p, "-c", "import boto3").Run() == nil {
			progs = append(progs, program{name: "path-python3-boto3", path: p})
		}
	}
	for _, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			py := find(t, p)
			if exec.Command(py, "-c", "import boto3").Run() != nil {
				if p.debian && os.Getenv("SSEC_INTEGRATION") == "require" {
					t.Fatal("python3-boto3 is not installed (scripts/deps.sh --clients installs it)")
				}
				t.Skip("*** no boto3 for " + py)
			}
			dir := t.TempDir()
			big, small := randomBytes(12<<20+7), randomBytes(2048)
			_ = os.WriteFile(filepath.Join(dir, "big"), big, 0o600)
			_ = os.WriteFile(filepath.Join(dir, "small"), small, 0o600)
			prefix := uniqueKey(t, "boto3/") + "/"
			outDir := t.TempDir()
			out := runProgram(t, clientEnv(t), py, "testdata/boto3_client.py", "enc", prefix,
				filepath.Join(dir, "small"), filepath.Join(dir, "big"), outDir)
			if got, _ := os.ReadFile(filepath.Join(outDir, "big")); !bytes.Equal(got, big) {
				t.Error("download_file returned other bytes")
			}
			want := map[string][]byte{prefix + "small": small, prefix + "big": big, prefix + "copy": small}
			for _, k := range strings.Fields(out) {
				assertEncrypted(t, "enc", k, "k1", want[k])
				delete(want, k)
			}
			if len(want) != 0 {
				t.Errorf("the script did not report %v", want)
			}
		})
	}
}
