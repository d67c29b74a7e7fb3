package deploytest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Build arguments the image check passes, as `docker build --build-arg` would.
var imageBuildArgs = map[string]string{
	"VERSION": "v0.0.0-imagecheck",
	"COMMIT":  "0123456789ab",
	"DATE":    "2026-12-01T00:00:00Z",
}

var (
	imageOnce   sync.Once
	imageBinary string // the binary the final stage copies, built as the build stage builds it
	imageErr    error
	imageDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// builtImageBinary runs the Dockerfile's build stage here, once per test
// binary, and returns the path of the file its final stage copies.
func builtImageBinary(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() { imageBinary, imageErr = runBuildStage(t) })
	if imageErr != nil {
		t.Fatalf("the Dockerfile's build stage: %v", imageErr)
	}
	return imageBinary
}

// runBuildStage plays the build stage's instructions in a fresh directory
// standing in for its WORKDIR: COPY takes files from the build context as
// .dockerignore filters it, RUN runs the instruction's exact command line
// (`/bin/sh -c` for the shell form, as BuildKit does) with the stage's ARGs in
// the environment. Only the base image's own files are not there: the Go
// toolchain is this machine's, so its version must be the one the image's
// tag names.
func runBuildStage(t testing.TB) (string, error) {
	d := parseDockerfile(t)
	build := d.stage(t, "build")
	final := d.stages[len(d.stages)-1]

	goTag := strings.TrimPrefix(strings.SplitN(build.BaseName, "-", 2)[0], "golang:")
	if runtime.Version() != "go"+goTag {
		return "", fmt.Errorf("the image builds with Go %s, this test runs on %s: use that toolchain", goTag, runtime.Version())
	}

	var err error
	imageDir, err = os.MkdirTemp("", "accessbot-image-*")
	if err != nil {
		return "", err
	}
	root := filepath.Join(imageDir, "rootfs")
	workdir := "/"
	env := os.Environ()
	pm := dockerignore(t)
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			workdir = path.Join(workdir, c.Path)
			if err := os.MkdirAll(filepath.Join(root, workdir), 0o755); err != nil {
				return "", err
			}
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				v, ok := imageBuildArgs[kv.Key]
				if !ok && kv.Value != nil {
					v, ok = *kv.Value, true
				}
				if ok {
					env = append(env, kv.Key+"="+v)
				}
			}
		case *instructions.CopyCommand:
			if c.From != "" {
				return "", fmt.Errorf("COPY --from=%s in the build stage: not handled here", c.From)
			}
			dest := c.DestPath
			if !path.IsAbs(dest) {
				dest = path.Join(workdir, dest)
			}
			for _, src := range c.SourcePaths {
				if err := copyFromContext(pm, src, filepath.Join(root, dest)); err != nil {
					return "", fmt.Errorf("%s: %w", c.String(), err)
				}
			}
		case *instructions.RunCommand:
			if len(c.FlagsUsed) > 0 {
				return "", fmt.Errorf("RUN with flags %v: not handled here", c.FlagsUsed)
			}
			for _, word := range strings.Fields(strings.Join(c.CmdLine, " ")) {
				if strings.HasPrefix(word, "/") {
					// Here it would write outside the stand-in directory.
					return "", fmt.Errorf("RUN %s: absolute path %s; keep the build stage's paths relative to WORKDIR", strings.Join(c.CmdLine, " "), word)
				}
			}
			argv := c.CmdLine
			if c.PrependShell {
				argv = []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir = filepath.Join(root, workdir)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return "", fmt.Errorf("RUN %s: %v\n%s", strings.Join(c.CmdLine, " "), err, out.String())
			}
			t.Logf("RUN %s (%s)", strings.Join(c.CmdLine, " "), time.Since(start).Round(time.Millisecond))
		default:
			return "", fmt.Errorf("build stage: %s is not handled here", c.Name())
		}
	}

	for _, c := range commandsOf[*instructions.CopyCommand](final) {
		if c.From == build.Name && len(c.SourcePaths) == 1 {
			bin := filepath.Join(root, c.SourcePaths[0])
			if _, err := os.Stat(bin); err != nil {
				return "", fmt.Errorf("the final stage copies %s, which the build stage did not make: %v", c.SourcePaths[0], err)
			}
			return bin, nil
		}
	}
	return "", fmt.Errorf("the final stage copies nothing from the build stage")
}

// copyFromContext copies src (relative to the repository, the build context)
// to dest as COPY does: a directory's contents, or a file into dest/.
func copyFromContext(pm interface {
	MatchesOrParentMatches(string) (bool, error)
}, src, dest string) error {
	src = path.Clean(src)
	if path.IsAbs(src) || strings.HasPrefix(src, "..") || strings.ContainsAny(src, "*?[") {
		return fmt.Errorf("source %q: only plain paths inside the context are handled here", src)
	}
	base := filepath.Join(repoRoot, filepath.FromSlash(src))
	info, err := os.Stat(base)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		if ex, _ := pm.MatchesOrParentMatches(src); ex {
			return fmt.Errorf("%s is excluded by .dockerignore", src)
		}
		return copyFile(base, filepath.Join(dest, filepath.Base(base)), info.Mode())
	}
	return filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		rel = filepath.ToSlash(rel)
		if rel != "." {
			if ex, err := pm.MatchesOrParentMatches(rel); err != nil {
				return err
			} else if ex {
				if e.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		inDir, _ := filepath.Rel(base, p)
		target := filepath.Join(dest, inDir)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, target, info.Mode())
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestImageBinary: the binary the image ships is static (distroless static
// has no libc or loader), stripped, built with -trimpath and without cgo, and
// `version` prints what the build arguments stamped in.
func TestImageBinary(t *testing.T) {
	bin := builtImageBinary(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %s program header: it is dynamically linked", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Error("the binary has a .dynamic section")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s was not applied")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("the binary has DWARF section %s: -ldflags -w was not applied", s.Name)
		}
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	if info.Path != "github.com/accessbot/accessbot" {
		t.Errorf("the binary is %s, want the accessbot command", info.Path)
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	want := fmt.Sprintf("accessbot %s (commit %s, built %s, %s)\n",
		imageBuildArgs["VERSION"], imageBuildArgs["COMMIT"], imageBuildArgs["DATE"], info.GoVersion)
	if string(out) != want {
		t.Errorf("version printed %q, want %q", out, want)
	}
}
