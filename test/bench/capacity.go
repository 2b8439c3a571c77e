package main

import (
	"fmt"
	"math"
	"strings"
)

// capacityModel turns measured rows per server core into vCPUs and pods for
// a target transaction rate. Its assumptions are stated with its output.
type capacityModel struct {
	targets     []float64 // transactions (rows) per second
	utilization float64   // planned CPU utilization, headroom for bursts and GC
	podVCPUs    int       // vCPUs of one peer-pod VM
	minPods     int       // for availability
}

func (c capacityModel) vcpus(perCore, target float64) int {
	return int(math.Ceil(target / (perCore * c.utilization)))
}

func (c capacityModel) pods(vcpus int) int {
	return max(c.minPods, int(math.Ceil(float64(vcpus)/float64(c.podVCPUs))))
}

// render is a table over the rows that matter for sizing: each transport
// at the batch the on-prem functions send, and the single-row load rows.
func (c capacityModel) render(rows []row, sizingBatch int) string {
	var picked []row
	for _, r := range rows {
		if r.err != nil || r.res.rowsPerCore() <= 0 || r.scenario == scenarioFloor {
			continue
		}
		if r.batch == sizingBatch || strings.Contains(r.scenario, "clients ×") {
			picked = append(picked, r)
		}
	}
	if len(picked) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Capacity model from this run: vCPUs = ⌈rate ÷ (rows/s per server core × %.0f %% planned utilization)⌉, pods of %d vCPUs, at least %d pods.\n\n",
		c.utilization*100, c.podVCPUs, c.minPods)
	b.WriteString("| Path | Rows/request | Rows/s per server core |")
	for _, t := range c.targets {
		fmt.Fprintf(&b, " %s tx/s: vCPUs (pods) |", humanRate(t))
	}
	b.WriteString("\n|---|--:|--:|")
	for range c.targets {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, r := range picked {
		pc := r.res.rowsPerCore()
		fmt.Fprintf(&b, "| %s | %d | %s |", r.scenario, r.batch, humanRate(pc))
		for _, t := range c.targets {
			v := c.vcpus(pc, t)
			fmt.Fprintf(&b, " %d (%d) |", v, c.pods(v))
		}
		b.WriteString("\n")
	}
	return b.String()
}
