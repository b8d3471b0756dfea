package monitor

import "github.com/pelagos-containers/pelagos/container"

func specWithBPF(n int) container.Spec {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return container.Spec{SeccompBPF: b}
}
