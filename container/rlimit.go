package container

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var rlimits = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// RlimitName is the --ulimit name of a resource number.
func RlimitName(r int) string {
	for n, v := range rlimits {
		if v == r {
			return n
		}
	}
	return strconv.Itoa(r)
}

// ParseUlimit reads Docker's --ulimit NAME=SOFT[:HARD]; -1 or
// "unlimited" means no limit.
func ParseUlimit(spec string) (Rlimit, error) {
	name, val, ok := strings.Cut(spec, "=")
	res, known := rlimits[strings.TrimPrefix(strings.ToLower(name), "rlimit_")]
	if !ok || !known {
		return Rlimit{}, fmt.Errorf("--ulimit %q: use NAME=SOFT[:HARD] with NAME one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack", spec)
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	if !hasHard {
		hardS = softS
	}
	soft, err1 := parseLimit(softS)
	hard, err2 := parseLimit(hardS)
	if err1 != nil || err2 != nil {
		return Rlimit{}, fmt.Errorf("--ulimit %q: limits must be numbers, -1 or unlimited (e.g. nofile=1024:2048)", spec)
	}
	if soft > hard {
		return Rlimit{}, fmt.Errorf("--ulimit %q: the soft limit is above the hard limit", spec)
	}
	return Rlimit{Resource: res, Soft: soft, Hard: hard}, nil
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" || s == "-1" {
		return math.MaxUint64, nil // RLIM_INFINITY
	}
	return strconv.ParseUint(s, 10, 64)
}
