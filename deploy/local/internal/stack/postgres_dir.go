package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/freshet/freshet/pkg/servers"
)

// systemDataRoot holds the Postgres folders of stacks whose own folder the
// postgres user cannot enter (a clone in root's home, mode 0700). Tests
// point it elsewhere.
var systemDataRoot = "/var/lib/freshet"

// stackFile, in a folder under systemDataRoot, names the stack folder that
// folder belongs to.
const stackFile = "stack-dir"

// postgresPlace is where the stack's Postgres keeps its cluster.
type postgresPlace struct {
	dir  string // the server's folder, given to servers.StartPostgres
	link string // <stack>/postgres, a symbolic link to dir, when dir is elsewhere
}

// note is what the summary line says about an outside folder.
func (p postgresPlace) note() string {
	if p.link == "" {
		return ""
	}
	return fmt.Sprintf("  (data in %s, where user postgres can reach it; linked from %s)", p.dir, p.link)
}

// placePostgres chooses the folder of the stack's Postgres. Postgres runs
// as user postgres when the stack runs as root, and that user must enter
// every parent of its folder. The folder is <stack>/postgres when it can;
// otherwise it is <systemDataRoot>/<name>-<hash of the stack folder>/postgres,
// and <stack>/postgres is a symbolic link to it, so that the cluster
// survives restarts and the user's own folders keep their modes. When the
// link is gone (the stack folder was deleted to start over), the outside
// folder is stale and removed, as are those of other stack folders that no
// longer point to theirs.
func placePostgres(stackDir string) (postgresPlace, error) {
	local := filepath.Join(stackDir, "postgres")
	fi, err := os.Lstat(local)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(local)
		if err != nil {
			return postgresPlace{}, fmt.Errorf("postgres folder: %w", err)
		}
		// Record (again) whose folder it is: the checkout may have moved.
		if filepath.Dir(filepath.Dir(target)) == systemDataRoot {
			if err := writeStackFile(filepath.Dir(target), stackDir); err != nil {
				return postgresPlace{}, err
			}
		}
		return postgresPlace{dir: target, link: local}, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return postgresPlace{}, fmt.Errorf("postgres folder: %w", err)
	}
	if servers.PostgresReachable(local) == nil {
		return postgresPlace{dir: local}, nil
	}
	removeStalePostgresDirs(systemDataRoot)
	home := filepath.Join(systemDataRoot, systemDirName(stackDir))
	target := filepath.Join(home, "postgres")
	if postmasterRunning(filepath.Join(target, "data")) {
		return postgresPlace{}, fmt.Errorf("a postgres still runs in %s, which %s no longer links to: stop it first", target, local)
	}
	if err := os.RemoveAll(home); err != nil { // stale: its link is gone
		return postgresPlace{}, fmt.Errorf("postgres folder: %w", err)
	}
	if err := writeStackFile(home, stackDir); err != nil {
		return postgresPlace{}, err
	}
	if fi != nil { // a folder of an earlier run, which postgres cannot enter: move it
		if err := os.Rename(local, target); err != nil {
			return postgresPlace{}, fmt.Errorf("move %s to %s, where user postgres can reach it: %w", local, target, err)
		}
	}
	if err := os.Symlink(target, local); err != nil {
		return postgresPlace{}, fmt.Errorf("postgres folder: %w", err)
	}
	return postgresPlace{dir: target, link: local}, nil
}

// writeStackFile creates home and records in it the stack folder it
// belongs to.
func writeStackFile(home, stackDir string) error {
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("postgres folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, stackFile), []byte(stackDir+"\n"), 0o644); err != nil {
		return fmt.Errorf("postgres folder: %w", err)
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// systemDirName names a stack folder's outside folder: the name of the
// folder that holds the stack folder (usually the checkout), for people,
// and a hash of the stack folder's absolute path, so that two checkouts
// never share a cluster.
func systemDirName(stackDir string) string {
	sum := sha256.Sum256([]byte(stackDir))
	name := unsafeName.ReplaceAllString(filepath.Base(filepath.Dir(stackDir)), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "-" + hex.EncodeToString(sum[:6])
}

// removeStalePostgresDirs removes the folders under root whose stack
// folder no longer links to them and whose server is not running. Errors
// are ignored: a folder left behind costs disk, not correctness.
func removeStalePostgresDirs(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		home := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(home, stackFile))
		if err != nil {
			continue // not ours
		}
		target := filepath.Join(home, "postgres")
		if link, err := os.Readlink(filepath.Join(strings.TrimSpace(string(b)), "postgres")); err == nil && link == target {
			continue
		}
		if postmasterRunning(filepath.Join(target, "data")) {
			continue
		}
		_ = os.RemoveAll(home)
	}
}

// postmasterRunning reports whether the postmaster.pid of data names a
// live process.
func postmasterRunning(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return err == nil && pid > 0 && servers.ProcessAlive(pid)
}
