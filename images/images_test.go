package images

import (
	"bufio"
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const repoRoot = ".."

// instruction is one Containerfile instruction with continuation lines
// joined.
type instruction struct {
	cmd  string
	args string
}

func parse(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

func all(ins []instruction, cmd string) []string {
	var out []string
	for _, i := range ins {
		if i.cmd == cmd {
			out = append(out, i.args)
		}
	}
	return out
}

// buildOutputs are the files `make build` leaves in bin/: one binary per
// cmd/ directory plus the onnxruntime library.
func buildOutputs(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{"bin/libonnxruntime.so.1": true}
	dirs, err := os.ReadDir(filepath.Join(repoRoot, "cmd"))
	require.NoError(t, err)
	for _, d := range dirs {
		if d.IsDir() {
			out["bin/"+d.Name()] = true
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	require.NoError(t, err)
	require.Contains(t, string(makefile), "ORT_LIB_NAME   := libonnxruntime.so.1", "the Makefile no longer names the library we copy")
	return out
}

func TestContainerfiles(t *testing.T) {
	outputs := buildOutputs(t)
	tests := []struct {
		file   string
		binary string
		static bool
		ort    bool
	}{
		{"veil-runtime.Containerfile", "bin/veil-runtime", false, true},
		{"veil-batcher.Containerfile", "bin/veil-batcher", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			ins := parse(t, tc.file)
			require.NotEmpty(t, ins)
			assert.Equal(t, "FROM", ins[0].cmd, "first instruction")
			assert.Len(t, all(ins, "FROM"), 1, "single stage: the image is assembled from make build outputs")

			var copied []string
			for _, args := range all(ins, "COPY") {
				fields := strings.Fields(args)
				require.Len(t, fields, 2, "COPY src dst: %s", args)
				src := fields[0]
				copied = append(copied, src)
				if strings.HasPrefix(src, "bin/") {
					assert.True(t, outputs[src], "%s is not produced by make build", src)
				} else {
					_, err := os.Stat(filepath.Join(repoRoot, src))
					assert.NoError(t, err, "COPY source %s missing from the repository", src)
				}
			}
			assert.Contains(t, copied, tc.binary)
			assert.Contains(t, copied, "NOTICE")

			users := all(ins, "USER")
			require.NotEmpty(t, users)
			uid, _, _ := strings.Cut(users[len(users)-1], ":")
			n, err := strconv.Atoi(uid)
			require.NoError(t, err, "USER must be numeric so that runAsNonRoot can verify it")
			assert.NotZero(t, n, "the image must not run as root")

			labels := strings.Join(all(ins, "LABEL"), " ")
			for _, key := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.licenses"} {
				assert.Contains(t, labels, key+"=")
			}
			hc := all(ins, "HEALTHCHECK")
			require.Len(t, hc, 1)
			assert.Regexp(t, `127\.0\.0\.1[:/]8080`, hc[0], "health check targets the serving port on loopback")
			assert.Len(t, all(ins, "ENTRYPOINT"), 1)
			assert.Contains(t, all(ins, "ENTRYPOINT")[0], strings.TrimPrefix(tc.binary, "bin/"))

			envs := strings.Join(all(ins, "ENV"), " ")
			if tc.ort {
				m := regexp.MustCompile(`ORT_LIBRARY_PATH=(\S+)`).FindStringSubmatch(envs)
				require.Len(t, m, 2, "the runtime must be told where onnxruntime is")
				var dsts []string
				for _, args := range all(ins, "COPY") {
					dsts = append(dsts, strings.Fields(args)[1])
				}
				assert.Contains(t, dsts, m[1], "ORT_LIBRARY_PATH must point at the copied library")
			} else {
				assert.NotContains(t, envs, "ORT_LIBRARY_PATH")
				assert.NotContains(t, copied, "bin/libonnxruntime.so.1")
			}

			// After `make build` (as in `make test`), check the binary itself.
			bin := filepath.Join(repoRoot, tc.binary)
			if _, err := os.Stat(bin); err != nil {
				t.Logf("%s not built; binary checks skipped (run make build)", tc.binary)
				return
			}
			f, err := elf.Open(bin)
			require.NoError(t, err)
			defer f.Close()
			dynamic := false
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					dynamic = true
				}
			}
			assert.Equal(t, !tc.static, dynamic, "%s: static=%v expected", tc.binary, tc.static)
		})
	}
}
