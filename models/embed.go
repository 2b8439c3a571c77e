// Package models carries the workshop's fraud model and its scaler as data,
// so that every Veil binary has working defaults without any download.
// Attribution: see NOTICE and SOURCE.md in this folder.
package models

import (
	"embed"
	"io/fs"
)

// FraudONNX is the workshop's trained fraud model (Apache-2.0): input
// "dense_input" FP32 [-1,5], output "dense_3" FP32 [-1,1].
//
//go:embed fraud/1/model.onnx
var FraudONNX []byte

// FraudScalerJSON is the StandardScaler fitted with FraudONNX, as JSON
// (mean_, scale_, feature_order).
//
//go:embed fraud/artifact/scaler.json
var FraudScalerJSON []byte

// Fraud is the fraud model's directory as KServe lays it out under a
// storageUri (1/model.onnx, artifact/scaler.json), for tools that seal or
// copy a whole model tree.
//
//go:embed fraud/1/model.onnx fraud/artifact/scaler.json
var fraudTree embed.FS

// FraudTree returns the fraud model directory rooted at "fraud".
func FraudTree() fs.FS {
	sub, err := fs.Sub(fraudTree, "fraud")
	if err != nil {
		// fs.Sub only fails on an invalid path, and "fraud" is a constant.
		panic(err)
	}
	return sub
}
