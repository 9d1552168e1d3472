variable "lab" {
  description = "The lab's name (the topology file's name)."
  type        = string
}

variable "labid" {
  description = "Four hex digits naming the lab's kernel objects (lab.topology.labid_of)."
  type        = string
}

variable "supernet" {
  description = "The lab's IPv4 supernet, a /22 or larger: one /24 per rack after the first."
  type        = string
}

variable "hosts" {
  description = "libvirt host name => its connection URI (qemu:///system, qemu+ssh://...)."
  type        = map(string)
}

variable "racks" {
  description = "Racks in file order, each on one host, its nodes in file order. cpus and memory (bytes) are the topology's, null when it gives none."
  type = list(object({
    name = string
    host = string
    nodes = list(object({
      name   = string
      cpus   = optional(number)
      memory = optional(number)
    }))
  }))
}

variable "ssh_authorized_key" {
  description = "The lab's SSH public key: root in every VM accepts it."
  type        = string
}

variable "host_keys" {
  description = "node => its SSH host key pair (OpenSSH format), so racklab can check whom it reaches."
  type = map(object({
    private = string
    public  = string
  }))
  sensitive = true
}
