terraform {
  required_version = ">= 1.5"
  required_providers {
    libvirt = {
      source = "dmacvicar/libvirt"
      # 0.9.0 rewrote the schema after libvirt's XML and 0.9.1 changed it again: this
      # module is written against (and its tests check it against) exactly this one
      version = "0.9.7"
    }
  }
}
