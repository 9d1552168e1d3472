variable "lab" {
  description = "The lab's name: every object here is named after it."
  type        = string
}

variable "host" {
  description = "This libvirt host's name in the lab (the plan's host of each rack)."
  type        = string
}

variable "racks" {
  description = "The racks on this host: the plan module's racks output, filtered."
  type = map(object({
    name    = string
    cidr    = string
    gateway = string
    network = string
    bridge  = string
  }))
}

variable "nodes" {
  description = "The VM nodes on this host: the plan module's nodes output, filtered."
  type = map(object({
    name      = string
    rack      = string
    domain    = string
    mac       = string
    vcpus     = number
    memory    = number
    cpu_quota = optional(number)
  }))
}

variable "seeds" {
  description = "node => its NoCloud seed (the plan module's seeds output)."
  type = map(object({
    meta_data      = string
    user_data      = string
    network_config = string
  }))
  sensitive = true
}

variable "image" {
  description = "racklab's VM image on the machine running terraform (`lab images build --vm`): kernel, initrd, base disk (qcow2) and its virtual size in bytes, racklab disk. Each is uploaded once per lab into the pool."
  type = object({
    kernel       = string
    initrd       = string
    disk         = string
    disk_bytes   = number
    racklab_disk = string
  })
  validation {
    condition     = var.image.disk_bytes > 0
    error_message = "racklab's VM image was not built when this module was rendered: run `lab images build --vm`, then `lab terraform render` again."
  }
}

variable "pool" {
  description = "The libvirt storage pool on this host for the lab's volumes."
  type        = string
  default     = "default"
}

variable "domain_type" {
  description = "kvm, or qemu (TCG emulation) on hosts where KVM cannot run a stock kernel."
  type        = string
  default     = "kvm"
  validation {
    condition     = contains(["kvm", "qemu"], var.domain_type)
    error_message = "domain_type is kvm or qemu."
  }
}

variable "cmdline" {
  description = "The kernel command line: racklab's VM image boots its own init, which reads the NoCloud seed on /dev/vdb."
  type        = string
}
