<DTSControl>
    <Version>1</Version>
    <AddressType>DTS</AddressType>
    <MessageType>Data</MessageType>
    <From_DTS>GP0001</From_DTS>
    <To_DTS>GPPROVIDER_4857773456_09011955_Mowers</To_DTS>
    <Subject>Consultation report for patient: Mrs Lorne Mowers, NHS Number: 485 777 3456, seen at: Grass Heights GP Practice, GP0001, Version: 1</Subject>
    <LocalId>GP0001</LocalId>
    <DTSId></DTSId>
    <PartnerId></PartnerId>
    <Compress>Y</Compress>
    <Encrypted>N</Encrypted>
    <WorkflowId>GPCONNECT_SEND_DOCUMENT</WorkflowId>
    <ProcessId></ProcessId>
    <DataChecksum></DataChecksum>
    <IsCompressed>Y</IsCompressed>
</DTSControl>
