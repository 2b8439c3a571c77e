# Veil's default kata-agent policy (OPA rego), carried in initdata and
# therefore measured: the host (kubelet/containerd, i.e. the cloud admin)
# may drive the pod lifecycle but may not exec into the confidential
# containers, feed their stdin or swap this policy at runtime.
#
# Container creation stays open so that KServe's storage-initializer and the
# model server can start without a pod-specific policy. For the strongest
# setting generate a pod-specific policy with genpolicy (it pins images,
# commands and mounts) or enforce image signatures through the CDH image
# policy (veil initdata --image_policy_uri).
package agent_policy

default AddARPNeighborsRequest := true
default AddSwapRequest := true
default CloseStdinRequest := true
default CopyFileRequest := true
default CreateContainerRequest := true
default CreateSandboxRequest := true
default DestroySandboxRequest := true
default GetMetricsRequest := true
default GetOOMEventRequest := true
default GuestDetailsRequest := true
default ListInterfacesRequest := true
default ListRoutesRequest := true
default MemHotplugByProbeRequest := true
default OnlineCPUMemRequest := true
default PauseContainerRequest := true
default PullImageRequest := true
default RemoveContainerRequest := true
default RemoveStaleVirtiofsShareMountsRequest := true
default ReseedRandomDevRequest := true
default ResumeContainerRequest := true
default SetGuestDateTimeRequest := true
default SignalProcessRequest := true
default StartContainerRequest := true
default StartTracingRequest := true
default StatsContainerRequest := true
default StopTracingRequest := true
default TtyWinResizeRequest := true
default UpdateContainerRequest := true
default UpdateEphemeralMountsRequest := true
default UpdateInterfaceRequest := true
default UpdateRoutesRequest := true
default WaitProcessRequest := true

# Veil writes no key, model or transaction data to stdout/stderr, so the
# container logs may leave the TEE.
default ReadStreamRequest := true

# Denied: no exec, no stdin, no runtime policy replacement.
default ExecProcessRequest := false
default WriteStreamRequest := false
default SetPolicyRequest := false
